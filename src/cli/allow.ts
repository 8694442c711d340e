import { listAllow } from "../store/allowlist.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function allowCommand(ctx: CommandContext): Promise<number> {
  const [action, entry, ...rest] = ctx.args;
  switch (action) {
    case "add": {
      if (!entry || rest.length) throw new UsageError("usage: mailferry allow add <ip|cidr|domain|address> [--description TEXT]");
      const added = await withServices(ctx, (s) => s.lists.allow(CLI_ACTOR, entry, ctx.options.description ?? ""));
      ctx.io.out(`allowlisted ${added.kind} ${added.value}`);
      return 0;
    }
    case "remove": {
      if (!entry || rest.length) throw new UsageError("usage: mailferry allow remove <entry>");
      await withServices(ctx, (s) => s.lists.disallow(CLI_ACTOR, entry));
      ctx.io.out(`removed ${entry}`);
      return 0;
    }
    case "list": {
      const entries = await withStore(ctx, (s) => listAllow(s.db));
      if (ctx.json) ctx.io.out(JSON.stringify(entries));
      else ctx.io.out(entries.length ? entries.map((e) => `${e.kind.padEnd(7)} ${e.value}${e.note ? `  (${e.note})` : ""}`).join("\n") : "(allowlist is empty)");
      return 0;
    }
    default:
      throw new UsageError(`unknown allow command: ${action ?? "(none)"}; try: add, list, remove`);
  }
}
