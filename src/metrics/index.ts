// mailferry's metrics and where they come from. SMTP replies, connections,
// deliveries and decision reasons are read off the mail-log events as they are
// recorded (one hook, so the mail log and the metrics cannot disagree; never
// the reply text, which may be reworded); greylist verdicts and
// denylist hits come from the abuse guard; open sessions, DNS queries and the
// uptime are read at each scrape.
import type { GuardEvent } from "../policy/abuse.ts";
import type { NewEvent } from "../store/schema.ts";
import { VERSION } from "../version.ts";
import { createRegistry } from "./registry.ts";

/** Seconds; a delivery waits for the destination's DATA reply, so minutes are possible. */
const DELIVERY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

export type DeliveryOutcome = "delivered" | "deferred" | "failed" | "dropped";

/** What one mail-log event counts toward. */
export interface EventCounts {
  /** An SMTP reply of mailferry's (connect, MAIL, RCPT, DATA), with the reason of its decision. */
  reply: { stage: string; code: number; reason: string } | null;
  connection: "accepted" | "refused" | null;
  /** One per target delivered to (delivery events) or recipient dropped by a `drop` alias (accepted DATA). */
  deliveries: DeliveryOutcome[];
  deliverySeconds: number | null;
  /** Each webhook request by its response class ("2xx", "5xx", …) or "error" without a response. */
  webhookRequests: string[];
}

export function eventCounts(event: Pick<NewEvent, "stage" | "code" | "reason" | "detail">): EventCounts {
  const accepted = event.code < 400;
  if (event.stage === "delivery") {
    const detail = parseDetail(event.detail);
    const attempts = Array.isArray(detail.attempts) ? (detail.attempts as { status?: number | null }[]) : [];
    return {
      reply: null,
      connection: null,
      deliveries: [accepted ? "delivered" : event.code < 500 ? "deferred" : "failed"],
      deliverySeconds: typeof detail.duration_ms === "number" ? detail.duration_ms / 1000 : null,
      // Failed attempts are listed; the request that succeeded is the delivery itself.
      webhookRequests: detail.webhook === true ? [...attempts.map((a) => (a.status ? codeClass(a.status) : "error")), ...(accepted ? ["2xx"] : [])] : [],
    };
  }
  // Only an accepted DATA can list dropped recipients: other events' JSON is not parsed on this hot path.
  const dropList = event.stage === "data" && accepted ? parseDetail(event.detail).dropped : undefined;
  const dropped = Array.isArray(dropList) ? dropList.length : 0;
  return {
    reply: { stage: event.stage, code: event.code, reason: event.reason ?? "unknown" },
    connection: event.stage === "connect" ? (accepted ? "accepted" : "refused") : null,
    deliveries: Array<DeliveryOutcome>(dropped).fill("dropped"),
    deliverySeconds: null,
    webhookRequests: [],
  };
}

/** 250 → "2xx". */
const codeClass = (code: number) => `${Math.floor(code / 100)}xx`;

function parseDetail(detail: string | null | undefined): Record<string, unknown> {
  try {
    const parsed: unknown = detail ? JSON.parse(detail) : null;
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export interface MetricsOptions {
  startedAt: number;
  /** DNS queries sent so far by mailferry's resolvers. */
  dnsQueries: () => number;
  now?: () => number;
}

export function createMetrics({ startedAt, dnsQueries, now = Date.now }: MetricsOptions) {
  const registry = createRegistry();
  registry.collected("mailferry_info", "Version of the running mailferry (always 1)", "gauge", () => [{ labels: { version: VERSION }, value: 1 }]);
  registry.collected("mailferry_uptime_seconds", "Seconds since mailferry started", "gauge", () => Math.round((now() - startedAt) / 1000));
  const connections = registry.counter("mailferry_smtp_connections_total", "SMTP connections by the verdict at connect: accepted, or refused (denylist, too many connections)", ["result"], [{ result: "accepted" }, { result: "refused" }]);
  let openSessions = () => 0;
  registry.collected("mailferry_smtp_sessions_open", "SMTP connections open now", "gauge", () => openSessions());
  const replies = registry.counter("mailferry_smtp_replies_total", "SMTP replies of mailferry by stage (connect, mail, rcpt, data), reply class, code and reason (docs/architecture.md, Reasons)", ["stage", "class", "code", "reason"]);
  const deliveries = registry.counter("mailferry_deliveries_total", "Deliveries to targets by result; dropped: recipients of a drop alias, accepted and discarded", ["result"], [{ result: "delivered" }, { result: "deferred" }, { result: "failed" }, { result: "dropped" }]);
  const deliverySeconds = registry.histogram("mailferry_delivery_duration_seconds", "Time one delivery to a target took (SMTP or webhook)", DELIVERY_BUCKETS);
  const webhookRequests = registry.counter("mailferry_webhook_requests_total", "Webhook HTTP requests by response class, or error without a response", ["result"]);
  const greylist = registry.counter("mailferry_greylist_verdicts_total", "Greylisting: deferred (450, first try) or passed (retry after the delay, or a known sender)", ["verdict"], [{ verdict: "deferred" }, { verdict: "passed" }]);
  const denyHits = registry.counter("mailferry_deny_hits_total", "Denylist entries that matched, by SMTP stage (answered 421)", ["stage"], [{ stage: "connect" }, { stage: "mail" }]);
  registry.collected("mailferry_dns_queries_total", "DNS queries sent to the resolvers (cache misses)", "counter", dnsQueries);

  return {
    /** Counts a mail-log event as it is recorded. */
    observeEvent(event: Pick<NewEvent, "stage" | "code" | "reason" | "detail">) {
      const counts = eventCounts(event);
      if (counts.reply) replies.inc({ stage: counts.reply.stage, class: codeClass(counts.reply.code), code: String(counts.reply.code), reason: counts.reply.reason });
      if (counts.connection) connections.inc({ result: counts.connection });
      for (const result of counts.deliveries) deliveries.inc({ result });
      if (counts.deliverySeconds !== null) deliverySeconds.observe(counts.deliverySeconds);
      for (const result of counts.webhookRequests) webhookRequests.inc({ result });
    },
    observeGuard(event: GuardEvent) {
      if ("greylist" in event) greylist.inc({ verdict: event.greylist });
      else denyHits.inc({ stage: event.denied });
    },
    /** The MX listener starts after the parts that count into these metrics; it hands its count over once it runs. */
    countOpenSessions(read: () => number) {
      openSessions = read;
    },
    render: () => registry.render(),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
