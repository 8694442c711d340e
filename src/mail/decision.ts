// A decision is the reply a sender gets plus why: a reason token from a
// closed set, and the facts behind it. The reply text is for people and may
// be reworded; the mail log, the daily stats and the metrics count reasons.
// The set, with the stage and the typical reply of each: docs/architecture.md, "Reasons".
import type { Reply } from "./reply.ts";

export const REASONS = [
  // connect
  "connected",
  "denylisted",
  "too_many_connections",
  // MAIL
  "sender_ok",
  "bad_syntax",
  "unknown_parameter",
  // RCPT
  "recipient_ok",
  "relay_denied",
  "unknown_recipient",
  "catchall_refused",
  "alias_disabled",
  "bad_alias_target",
  "unverified_destination",
  "routing_loop",
  "too_many_targets",
  "too_many_recipients",
  "rate_limited",
  "greylisted",
  "destination_confirmed",
  "srs_invalid",
  "refusals_summarised",
  // DATA
  "oversize",
  "bad_from",
  "mail_loop",
  "gtube",
  "auth_dns_error",
  "dmarc_reject",
  "spf_fail",
  "spam",
  "spam_deferred",
  "scanner_down",
  "dropped",
  "delivered",
  "already_delivered",
  "partly_delivered",
  "too_long_retried",
  "timeout",
  // delivery to one target (and the DATA answer when every target failed alike)
  "delivered_by_webhook",
  "deferred_by_destination",
  "refused_by_destination",
  "private_destination",
  "unparsable_message",
  // submission (src/submission/, docs/send-as.md)
  "sender_not_allowed",
  "submitted",
  // any stage
  "internal_error",
  "too_many_errors",
  "session_timeout",
] as const;

export type Reason = (typeof REASONS)[number];

/** JSON-safe facts behind a decision, recorded in the mail log's detail. */
export type Facts = Record<string, unknown>;

export interface Decision {
  reply: Reply;
  reason: Reason;
  facts?: Facts;
}

export function decision(reply: Reply, reason: Reason, facts?: Facts): Decision {
  return facts ? { reply, reason, facts } : { reply, reason };
}

/** Refusals that count toward an automatic denylist entry for the sender. */
export const isAbuse = (reason: Reason): boolean => reason === "spam" || reason === "gtube";

/** The reason of a destination's own answer to one target. */
export function destinationReason(reply: Reply, viaWebhook: boolean): Reason {
  if (reply.code >= 500) return "refused_by_destination";
  if (reply.code >= 400) return "deferred_by_destination";
  return viaWebhook ? "delivered_by_webhook" : "delivered";
}
