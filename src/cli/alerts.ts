// `alerts list [--json]`: the alerts the server raised (docs/operations.md, "Alerts"), lasting ones first.
import { listAlerts } from "../store/alerts.ts";
import type { Alert } from "../store/schema.ts";
import { withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function alertJson(a: Alert) {
  return { key: a.key, kind: a.kind, title: a.title, detail: a.detail, started_at: iso(a.started_at), last_sent_at: iso(a.last_sent_at), resolved_at: iso(a.resolved_at) };
}

function describe(a: Alert): string {
  const state = a.resolved_at === null ? `since ${iso(a.started_at)}` : `resolved ${iso(a.resolved_at)}`;
  return `${a.resolved_at === null ? "!" : "✓"} ${a.title} (${state})\n    ${a.detail}`;
}

export async function alertsCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args[0] !== "list" || ctx.args.length > 1) throw new UsageError("usage: mailferry alerts list [--json]");
  const alerts = await withStore(ctx, (s) => listAlerts(s.db));
  if (ctx.json) ctx.io.out(JSON.stringify(alerts.map(alertJson)));
  else ctx.io.out(alerts.length ? alerts.map(describe).join("\n") : "(no alerts)");
  return 0;
}
