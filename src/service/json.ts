// Resources as JSON, the same for the API and the CLI's --json: times as ISO
// text, secrets never.
import type { NodeState } from "../store/nodes.ts";
import type { Event } from "../store/schema.ts";
import type { TokenInfo } from "../store/tokens.ts";
import type { DestinationState, Waiting } from "./destinations.ts";

/** Milliseconds to ISO text, null kept. */
export const isoTime = <T extends number | null>(ms: T): T extends number ? string : string | null => (ms === null ? null : new Date(ms).toISOString()) as never;

export function tokenJson(t: TokenInfo) {
  return { name: t.name, scope: t.scope, created_at: isoTime(t.created_at), last_used_at: isoTime(t.last_used_at), revoked_at: isoTime(t.revoked_at) };
}

export function destinationJson(d: DestinationState) {
  return { address: d.address, status: d.status, created_at: isoTime(d.created_at), verified_at: isoTime(d.verified_at), last_sent_at: isoTime(d.last_sent_at) };
}

/** What saving an alias means for its outside destinations: who was mailed a verification, and who gets no mail yet and why. */
export function waitingJson(waiting: Waiting[]) {
  return { verification_sent: waiting.filter((w) => w.mailed).map((w) => w.target), waiting_confirmation: waiting.map(({ target, why }) => ({ target, why })) };
}

/** A mail-log event with its recipients and detail parsed. */
export function eventJson(e: Event) {
  return { ...e, at: isoTime(e.at), recipients: e.recipients ? (JSON.parse(e.recipients) as string[]) : [], detail: e.detail ? (JSON.parse(e.detail) as Record<string, unknown>) : null };
}

/** A node on the database (docs/multi-node.md): alive when seen within a minute. */
export function nodeJson(n: NodeState) {
  return { hostname: n.hostname, alive: n.alive, started_at: isoTime(n.started_at), last_seen: isoTime(n.last_seen) };
}
