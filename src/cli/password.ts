// `mailferry password create|list|revoke`: app passwords for sending as an
// alias through the submission port (docs/send-as.md).
import { passwordJson } from "../service/passwords.ts";
import { isoTime } from "../service/json.ts";
import { listPasswords, type PasswordInfo } from "../store/passwords.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function passwordCommand(ctx: CommandContext): Promise<number> {
  const [action, ...args] = ctx.args;
  const { out } = ctx.io;
  switch (action) {
    case "create": {
      const { name } = ctx.options;
      if (args.length !== 1 || !name) throw new UsageError("usage: mailferry password create <address|domain> --name N");
      const created = await withServices(ctx, (s) => s.passwords.create(CLI_ACTOR, args[0]!, name));
      if (ctx.json) out(JSON.stringify({ password: created.password, info: passwordJson(created.info) }));
      // The password alone on the last line, for `| tail -1` (a fixed interface, docs/send-as.md).
      else out(`created app password ${created.info.id} "${created.info.name}" to send as ${sendAs(created.info)}; it is shown this once (user name: the address):\n${created.password}`);
      return 0;
    }
    case "list": {
      if (args.length) throw new UsageError("usage: mailferry password list [--json]");
      const passwords = await withStore(ctx, (s) => listPasswords(s.db));
      if (ctx.json) out(JSON.stringify(passwords.map(passwordJson)));
      else out(passwords.length ? passwords.map(describe).join("\n") : "(no app passwords)");
      return 0;
    }
    case "revoke": {
      const id = Number(args[0]);
      if (args.length !== 1 || !Number.isSafeInteger(id) || id <= 0) throw new UsageError("usage: mailferry password revoke <id> (the id password list shows)");
      const revoked = await withServices(ctx, (s) => s.passwords.revoke(CLI_ACTOR, id));
      out(`revoked app password ${revoked.id} "${revoked.name}" of ${revoked.identity}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown password command: ${action ?? "(none)"}; try: create, list, revoke`);
  }
}

const sendAs = (p: PasswordInfo) => (p.kind === "address" ? p.identity : `any address at ${p.identity}`);

function describe(p: PasswordInfo): string {
  const state = p.revoked_at === null ? "active" : `revoked ${isoTime(p.revoked_at)}`;
  return `${String(p.id).padStart(4)}  ${p.name}  sends as ${sendAs(p)}  ${state}  created ${isoTime(p.created_at)}  last used ${isoTime(p.last_used_at) ?? "never"}`;
}
