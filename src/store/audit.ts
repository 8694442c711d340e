// Every change an admin (or token, or the CLI) makes, with before and after.
import type { DB } from "./db.ts";
import { jsonNumber } from "./dialect.ts";
import type { AuditEntry } from "./schema.ts";

export interface Actor {
  /** "admin:alice", "token:deploy", "cli". */
  name: string;
  ip: string;
  /** The actor's word confirms the forwarding destinations it names (admins, the CLI, admin-scope tokens; docs/aliases.md). */
  confirmsDestinations?: boolean;
}

export async function audit(db: DB, actor: Actor, action: string, target: string, before: unknown = null, after: unknown = null, now = Date.now()): Promise<void> {
  const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v, (k, value) => (/private_key|password|secret|token/i.test(k) ? "[redacted]" : value)));
  await db.insertInto("audit_log").values({ at: now, actor: actor.name, ip: actor.ip, action, target, before: json(before), after: json(after) }).execute();
}

/** Whether a destination ever accepted a test message (the audit entry of the test records it). */
export async function anyTestMessageDelivered(db: DB): Promise<boolean> {
  const row = await db
    .selectFrom("audit_log")
    .select("id")
    .where("action", "=", "alias.test_message")
    .where(jsonNumber(db, "after", "delivered"), ">", 0)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export function listAudit(db: DB, limit = 100, offset = 0): Promise<AuditEntry[]> {
  return db.selectFrom("audit_log").selectAll().orderBy("id", "desc").limit(limit).offset(offset).execute();
}
