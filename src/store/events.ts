import type { DB } from "./db.ts";
import type { Event, EventStage, NewEvent } from "./schema.ts";

/** Stored header blocks are capped: enough to debug a message, never a body. */
export const MAX_STORED_HEADERS = 32 * 1024;

export async function recordEvent(db: DB, event: NewEvent): Promise<void> {
  const headers = event.headers && event.headers.length > MAX_STORED_HEADERS ? event.headers.slice(0, MAX_STORED_HEADERS) : event.headers;
  await db.insertInto("events").values({ ...event, headers }).execute();
}

export interface EventFilter {
  sessionId?: string;
  stage?: EventStage;
  domain?: string;
  limit?: number;
}

/** Newest first. */
export function listEvents(db: DB, filter: EventFilter = {}): Promise<Event[]> {
  let q = db.selectFrom("events").selectAll();
  if (filter.sessionId) q = q.where("session_id", "=", filter.sessionId);
  if (filter.stage) q = q.where("stage", "=", filter.stage);
  if (filter.domain) q = q.where("domain", "=", filter.domain);
  return q.orderBy("id", "desc").limit(filter.limit ?? 100).execute();
}
