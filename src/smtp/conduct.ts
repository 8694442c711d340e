// How long and how badly one SMTP session may behave before it is closed
// (docs/delivery-and-authentication.md, "Session limits"): a hard error limit
// like Postfix's smtpd_hard_error_limit, a bound on the whole session and on
// DATA, and the mail-log rows its refused recipients may cost.
import { type Decision, decision } from "../mail/decision.ts";
import { reply } from "../mail/reply.ts";

/** What the listener counts about one connection, apart from the Session the hooks read. */
export interface Conduct {
  startedAt: number;
  /** When DATA began (the 354), null outside DATA. */
  dataStartedAt: number | null;
  /** The connection closed; a connect stage still running must release what it counted. */
  closed: boolean;
  /** Refused MAIL and RCPT commands since the last accepted message. */
  errors: number;
  /** Refused recipients with a mail-log row of their own. */
  refusalsLogged: number;
  /** Refused recipients past those, summarised in one row when the session ends. */
  unlogged: RefusalSummary | null;
}

export interface RefusalSummary {
  last: Decision;
  count: number;
  reasons: Record<string, number>;
  /** The first few refused addresses, for the log reader. */
  sample: string[];
}

export interface SessionLimits {
  hardErrorLimit: number;
  maxSessionDuration: number;
  maxDataDuration: number;
}

/** Refused recipients of a session logged one by one; the rest share one summary row. */
export const REFUSALS_LOGGED_EACH = 5;
const SAMPLE = 10;

export const newConduct = (now: number): Conduct => ({ startedAt: now, dataStartedAt: null, closed: false, errors: 0, refusalsLogged: 0, unlogged: null });

/** After this many refused commands the session gets 421 and is closed (Postfix: smtpd_hard_error_limit). */
export function errorLimitDecision(errors: number, limit: number): Decision | null {
  return errors >= limit ? decision(reply(421, "4.7.0", `Too many errors (${errors}) in this session; closing`), "too_many_errors", { errors }) : null;
}

/** A session past its time, or a DATA sent too slowly: 421, and the connection is closed. */
export function deadlineDecision(conduct: Conduct, now: number, limits: SessionLimits): Decision | null {
  if (conduct.dataStartedAt !== null && now - conduct.dataStartedAt >= limits.maxDataDuration) {
    return decision(reply(421, "4.4.2", `DATA took longer than ${Math.round(limits.maxDataDuration / 1000)} seconds; closing`), "session_timeout", { phase: "data" });
  }
  if (now - conduct.startedAt >= limits.maxSessionDuration) {
    return decision(reply(421, "4.4.2", `Session lasted longer than ${Math.round(limits.maxSessionDuration / 1000)} seconds; closing`), "session_timeout", { phase: "session" });
  }
  return null;
}

/** Whether a refused recipient gets its own mail-log row; if not it is added to the session's summary. */
export function tallyRefusal(conduct: Conduct, refused: Decision, recipient: string): "log" | "summarised" {
  if (conduct.refusalsLogged < REFUSALS_LOGGED_EACH) {
    conduct.refusalsLogged++;
    return "log";
  }
  const summary = (conduct.unlogged ??= { last: refused, count: 0, reasons: {}, sample: [] });
  summary.last = refused;
  summary.count++;
  summary.reasons[refused.reason] = (summary.reasons[refused.reason] ?? 0) + 1;
  if (summary.sample.length < SAMPLE) summary.sample.push(recipient);
  return "summarised";
}

/** The one mail-log row of the refused recipients that had none: the last reply, with the count by reason. */
export const summaryDecision = (summary: RefusalSummary): Decision =>
  decision(summary.last.reply, "refusals_summarised", { refused: summary.count, reasons: summary.reasons, last_reason: summary.last.reason });
