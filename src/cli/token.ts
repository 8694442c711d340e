import { isoTime, tokenJson } from "../service/json.ts";
import { listTokens, TOKEN_SCOPES, type TokenInfo } from "../store/tokens.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function tokenCommand(ctx: CommandContext): Promise<number> {
  const [action, ...args] = ctx.args;
  const { out } = ctx.io;
  switch (action) {
    case "create": {
      const { name, scope } = ctx.options;
      if (args.length || !name || !scope) throw new UsageError(`usage: mailferry token create --name N --scope ${TOKEN_SCOPES.join("|")}`);
      const created = await withServices(ctx, (s) => s.tokens.create(CLI_ACTOR, name, scope));
      if (ctx.json) out(JSON.stringify({ token: created.token, info: tokenJson(created.info) }));
      // The token alone on the last line, for `| tail -1`.
      else out(`created token ${created.info.name} with scope ${created.info.scope}; it is shown this once (send it as Authorization: Bearer <token>):\n${created.token}`);
      return 0;
    }
    case "list": {
      if (args.length) throw new UsageError("usage: mailferry token list [--json]");
      const tokens = await withStore(ctx, (s) => listTokens(s.db));
      if (ctx.json) out(JSON.stringify(tokens.map(tokenJson)));
      else out(tokens.length ? tokens.map(describe).join("\n") : "(no tokens)");
      return 0;
    }
    case "revoke": {
      if (args.length !== 1) throw new UsageError("usage: mailferry token revoke <name>");
      const revoked = await withServices(ctx, (s) => s.tokens.revoke(CLI_ACTOR, args[0]!));
      out(`revoked token ${revoked.name}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown token command: ${action ?? "(none)"}; try: create, list, revoke`);
  }
}

function describe(t: TokenInfo): string {
  const state = t.revoked_at === null ? "active" : `revoked ${isoTime(t.revoked_at)}`;
  return `${t.name}  ${t.scope.padEnd(5)}  ${state}  created ${isoTime(t.created_at)}  last used ${isoTime(t.last_used_at) ?? "never"}`;
}
