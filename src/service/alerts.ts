// The alerts the server raised (docs/operations.md, "Alerts"), as
// `mailferry alerts list --json` and GET /api/v1/alerts both show them.
import type { DB } from "../store/db.ts";
import { listAlerts } from "../store/alerts.ts";
import type { Alert } from "../store/schema.ts";
import { isoTime } from "./json.ts";

export function alertJson(a: Alert) {
  return { key: a.key, kind: a.kind, title: a.title, detail: a.detail, started_at: isoTime(a.started_at), last_sent_at: isoTime(a.last_sent_at), resolved_at: isoTime(a.resolved_at) };
}

export type AlertJson = ReturnType<typeof alertJson>;

/** Lasting alerts first, then resolved ones, each the most recently started first. */
export async function alertList(db: DB): Promise<AlertJson[]> {
  return (await listAlerts(db)).map(alertJson);
}
