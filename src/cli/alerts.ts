// `alerts list [--json]`: the alerts the server raised (docs/operations.md, "Alerts"), lasting ones first.
import { type AlertJson, alertList } from "../service/alerts.ts";
import { withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

function describe(a: AlertJson): string {
  const state = a.resolved_at === null ? `since ${a.started_at}` : `resolved ${a.resolved_at}`;
  return `${a.resolved_at === null ? "!" : "✓"} ${a.title} (${state})\n    ${a.detail}`;
}

export async function alertsCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args[0] !== "list" || ctx.args.length > 1) throw new UsageError("usage: mailferry alerts list [--json]");
  const alerts = await withStore(ctx, (s) => alertList(s.db));
  if (ctx.json) ctx.io.out(JSON.stringify(alerts));
  else ctx.io.out(alerts.length ? alerts.map(describe).join("\n") : "(no alerts)");
  return 0;
}
