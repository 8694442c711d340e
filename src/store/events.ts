import type { DB } from "./db.ts";
import { countStat, statCategory } from "./stats.ts";
import type { Event, EventStage, NewEvent } from "./schema.ts";

/** Stored header blocks are capped: enough to debug a message, never a body. */
export const MAX_STORED_HEADERS = 32 * 1024;

export async function recordEvent(db: DB, event: NewEvent): Promise<void> {
  const headers = event.headers && event.headers.length > MAX_STORED_HEADERS ? event.headers.slice(0, MAX_STORED_HEADERS) : event.headers;
  await db.insertInto("events").values({ ...event, headers }).execute();
  const category = statCategory(event);
  if (category) await countStat(db, event.at, event.domain ?? null, category);
}

export interface EventFilter {
  sessionId?: string;
  stage?: EventStage;
  domain?: string;
  /** Substring of the recipients. */
  recipient?: string;
  /** Substring of the envelope sender. */
  sender?: string;
  verdict?: "accepted" | "deferred" | "rejected";
  since?: number;
  /** Only events older than this id (a cursor for stable paging). */
  before?: number;
  limit?: number;
  offset?: number;
}

/** Newest first. */
export function listEvents(db: DB, filter: EventFilter = {}): Promise<Event[]> {
  const like = (s: string) => `%${s}%`;
  let q = db.selectFrom("events").selectAll();
  if (filter.sessionId) q = q.where("session_id", "=", filter.sessionId);
  if (filter.stage) q = q.where("stage", "=", filter.stage);
  if (filter.domain) q = q.where("domain", "=", filter.domain);
  if (filter.recipient) q = q.where("recipients", "like", like(filter.recipient));
  if (filter.sender) q = q.where("mail_from", "like", like(filter.sender));
  if (filter.verdict === "accepted") q = q.where("code", "<", 400);
  if (filter.verdict === "deferred") q = q.where("code", ">=", 400).where("code", "<", 500);
  if (filter.verdict === "rejected") q = q.where("code", ">=", 500);
  if (filter.since) q = q.where("at", ">=", filter.since);
  if (filter.before) q = q.where("id", "<", filter.before);
  return q.orderBy("id", "desc").limit(filter.limit ?? 100).offset(filter.offset ?? 0).execute();
}

export function eventById(db: DB, id: number): Promise<Event | undefined> {
  return db.selectFrom("events").selectAll().where("id", "=", id).executeTakeFirst();
}
