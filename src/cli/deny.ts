import { duration } from "../config/values.ts";
import { activeDenylist } from "../store/senders.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function denyCommand(ctx: CommandContext): Promise<number> {
  const [action, entry, ...rest] = ctx.args;
  switch (action) {
    case "add": {
      if (!entry || rest.length) throw new UsageError("usage: mailferry deny add <ip|cidr|domain|address> [--reason TEXT] [--expires 30d]");
      let expiresAt: number | null = null;
      if (ctx.options.expires) {
        try {
          expiresAt = Date.now() + duration(ctx.options.expires);
        } catch {
          throw new UsageError("--expires takes a duration such as 12h, 7d or 30d");
        }
      }
      const added = await withServices(ctx, (s) => s.lists.deny(CLI_ACTOR, entry, { reason: ctx.options.reason ?? "", expiresAt }));
      ctx.io.out(`denylisted ${added.kind} ${added.value}${expiresAt ? ` until ${new Date(expiresAt).toISOString()}` : ""}`);
      return 0;
    }
    case "remove": {
      if (!entry || rest.length) throw new UsageError("usage: mailferry deny remove <entry>");
      await withServices(ctx, (s) => s.lists.undeny(CLI_ACTOR, entry));
      ctx.io.out(`removed ${entry}`);
      return 0;
    }
    case "list": {
      const entries = await withStore(ctx, (s) => activeDenylist(s.db));
      if (ctx.json) ctx.io.out(JSON.stringify(entries));
      else
        ctx.io.out(
          entries.length
            ? entries.map((e) => `${e.kind.padEnd(7)} ${e.value}  ${e.source}${e.expires_at ? ` until ${new Date(e.expires_at).toISOString()}` : ""}${e.reason ? `  (${e.reason})` : ""}`).join("\n")
            : "(denylist is empty)",
        );
      return 0;
    }
    default:
      throw new UsageError(`unknown deny command: ${action ?? "(none)"}; try: add, list, remove`);
  }
}
