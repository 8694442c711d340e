// The story of one message: the mail-log events of its SMTP session told top
// to bottom in words, as the log page, `mailferry log show` and the API show
// it. `messageStory` is pure: events in, steps out (the stages are in docs/architecture.md,
// "The journey of a message").
import type { MtaStsState } from "../delivery/relay.ts";
import type { Reason } from "../mail/decision.ts";
import type { DB } from "../store/db.ts";
import { eventById, listEvents } from "../store/events.ts";
import type { Event } from "../store/schema.ts";

export type Badge = "ok" | "fail" | "warn" | "info";

/** A one-click admin change offered by a step: a POST of `field=value` to the admin UI's `path`. */
export interface StoryAction {
  label: string;
  path: string;
  field: string;
  value: string;
}

export interface StoryStep {
  title: string;
  badge: Badge;
  lines: string[];
  action?: StoryAction;
}

type Detail = Record<string, unknown>;
/** The DATA event's authentication facts (src/smtp/hooks.ts); the last three are missing in events older than the story. */
interface InboundAuth {
  spf: string;
  dkim: string;
  dmarc: string;
  arc: string;
  from_domain?: string | null;
  dmarc_policy?: string | null;
  aligned_dkim?: boolean;
}

const detailOf = (e: Event): Detail => (e.detail ? (JSON.parse(e.detail) as Detail) : {});
const recipientsOf = (e: Event): string[] => (e.recipients ? (JSON.parse(e.recipients) as string[]) : []);
const replyOf = (e: Event) => `${e.code} ${e.enhanced} ${e.text}`.replace(/\s+/g, " ");
const badgeOf = (code: number): Badge => (code >= 500 ? "fail" : code >= 400 ? "warn" : "ok");
const domainOf = (address: string | null) => (address ? address.slice(address.lastIndexOf("@") + 1) : "");

/** The steps of a session's events, oldest first. */
export function messageStory(events: Event[]): StoryStep[] {
  if (events.length === 0) return [];
  const data = events.find((e) => e.stage === "data");
  const steps = [received(events), ...recipientSteps(events)];
  const auth = data && authentication(data);
  if (auth) steps.push(auth);
  const deliveries = events.filter((e) => e.stage === "delivery");
  const choices = deliveries.length ? forwardingChoices(deliveries, data && (detailOf(data).auth as InboundAuth | undefined)) : null;
  if (choices) steps.push(choices);
  steps.push(...deliveries.map(destination));
  steps.push(finalAnswer(events));
  return steps;
}

/** Who sent it: the client's address, verified host name, HELO and TLS. */
function received(events: Event[]): StoryStep {
  const first = events[0]!;
  const latest = detailOf(events.find((e) => e.stage !== "connect") ?? first);
  const tls = latest.tls as { protocol?: string; cipher?: string } | null | undefined;
  const sender = events.find((e) => e.mail_from !== null)?.mail_from;
  const lines = [
    `Client ${first.remote_ip}, ${latest.verified_host ? `verified host name ${String(latest.verified_host)}` : "no verified host name (FCrDNS)"}`,
    ...(latest.helo ? [`Said HELO ${String(latest.helo)}`] : []),
    tls?.protocol ? `TLS ${tls.protocol}${tls.cipher ? ` (${tls.cipher})` : ""}` : "No TLS",
    ...(sender !== undefined ? [`Envelope sender <${sender}>`] : []),
  ];
  return { title: "Received", badge: tls?.protocol ? "ok" : "info", lines };
}

/** RCPT: which rule each recipient matched, or why it was refused. */
function recipientSteps(events: Event[]): StoryStep[] {
  return events
    .filter((e) => e.stage === "rcpt")
    .map((e) => {
      const detail = detailOf(e);
      const recipient = recipientsOf(e).join(", ");
      if (e.code >= 400) return { title: `Recipient ${recipient} refused`, badge: badgeOf(e.code), lines: [reasonInWords(e), replyOf(e)], ...actionFor(e, detail) };
      const lines = [detail.rule ? `Matched the rule ${ruleInWords(String(detail.rule))}` : "Accepted"];
      if (Array.isArray(detail.captures)) lines.push(`Regex captures: ${detail.captures.map((c, i) => `$${i + 1} = "${String(c)}"`).join(", ")}`);
      if (typeof detail.tag === "string") lines.push(`Plus tag "+${detail.tag}": the name matched without it`);
      if (Array.isArray(detail.unverified)) lines.push(`Left out until verified: ${detail.unverified.join(", ")}`);
      if (detail.greylist) lines.push(`Skipped greylisting: ${JSON.stringify(detail.greylist).replace(/[{}"]/g, "")}`);
      return { title: `Recipient ${recipient}`, badge: "ok" as Badge, lines, ...actionFor(e, detail) };
    });
}

function ruleInWords(label: string): string {
  if (label === "*") return "* (catch-all)";
  if (label.startsWith("/")) return `${label} (regex)`;
  return label;
}

/** SPF, DKIM, DMARC and ARC of the message, in words. */
function authentication(data: Event): StoryStep | null {
  const auth = detailOf(data).auth as InboundAuth | undefined;
  if (!auth) return null;
  const senderDomain = domainOf(data.mail_from) || "the null sender's HELO";
  const lines = [
    `SPF ${auth.spf} for ${senderDomain}`,
    `DKIM ${auth.dkim}${auth.dkim === "none" ? " (not signed)" : ""}`,
    `DMARC ${auth.dmarc} for the author domain${auth.from_domain ? ` ${auth.from_domain}` : ""}${auth.dmarc_policy ? ` (policy ${auth.dmarc_policy})` : ""}`,
    `ARC chain ${auth.arc}`,
  ];
  const badge: Badge = auth.dmarc === "fail" || auth.spf === "fail" ? "fail" : auth.dmarc === "pass" ? "ok" : "info";
  return { title: "Authentication", badge, lines };
}

/** What mailferry did to the copies: SRS, the From header, its own signatures. */
function forwardingChoices(deliveries: Event[], auth: InboundAuth | undefined): StoryStep | null {
  const copy = deliveries.map(detailOf).find((d) => d.webhook !== true);
  if (!copy) return null;
  const policy = auth?.dmarc_policy ? `DMARC p=${auth.dmarc_policy} of ${auth.from_domain}` : "the author's DMARC policy refuses";
  const lines = [
    typeof copy.mail_from === "string" && /^SRS[01][=+-]/i.test(copy.mail_from) ? `SRS applied: envelope sender ${copy.mail_from}` : "Envelope sender kept (no SRS)",
    copy.friendly_from
      ? `From rewritten to the alias: ${policy} and no aligned DKIM signature (SPF alignment does not survive SRS)`
      : `From kept: ${auth?.aligned_dkim ? "an aligned DKIM signature carries DMARC through forwarding" : "the author's DMARC policy does not refuse"}`,
    ...signingInWords(copy),
  ];
  return { title: "Forwarding choices", badge: "info", lines };
}

/**
 * The ARC set and DKIM signature the copy got, and why (docs/delivery-and-authentication.md,
 * "What mailferry signs, and why"). Events older than that decision record one `signed` for both.
 */
function signingInWords(copy: Detail): string[] {
  const sealed = copy.arc_sealed ?? copy.signed;
  const dkim = copy.dkim_signed ?? copy.signed;
  if (copy.signing_domain === null || (!sealed && !dkim)) return ["Not sealed or signed (no active DKIM key for the alias domain)"];
  const by = typeof copy.signing_domain === "string" ? copy.signing_domain : "this server";
  const selector = typeof copy.selector === "string" ? ` (selector ${copy.selector})` : "";
  return [
    sealed ? `ARC sealed by ${by}${selector}: the set carries this server's verdicts to the destination` : "No ARC set added: the message's ARC chain takes no more (a failed seal or 50 sets, RFC 8617 section 5.1)",
    !dkim
      ? `Not DKIM signed by ${by}: the From is the author's, so DMARC would not align with this signature (forwarding.dkim_sign = rewritten)`
      : copy.friendly_from
        ? `DKIM signed by ${by}${selector}: the From names the alias, so DMARC aligns with this signature`
        : `DKIM signed by ${by}${selector} as well (forwarding.dkim_sign = always)`,
  ];
}

/** One target's answer: MX host, TLS, reply and time, or the webhook's attempts. */
function destination(e: Event): StoryStep {
  const d = detailOf(e);
  const target = recipientsOf(e).join(", ");
  const lines = d.webhook
    ? [`Webhook POST, ${Array.isArray(d.attempts) ? d.attempts.length + 1 : 1} attempt(s)`]
    : [d.mx ? `MX host ${String(d.mx)}` : "No MX host reached", d.tls ? `TLS ${String(d.tls)}` : "No TLS", ...mtaStsInWords(d.mta_sts as MtaStsState | null | undefined)];
  lines.push(`Answer: ${replyOf(e)}`);
  if (typeof d.duration_ms === "number") lines.push(`Took ${d.duration_ms} ms`);
  if (d.late) lines.push("Answered after the sender was given its reply");
  return { title: `Delivery to ${target}${d.original_recipient ? ` (for ${String(d.original_recipient)})` : ""}`, badge: badgeOf(e.code), lines };
}

/** The destination's MTA-STS policy as applied (RFC 8461 §5); nothing for events recorded before it was. */
function mtaStsInWords(state: MtaStsState | null | undefined): string[] {
  if (state === undefined) return [];
  if (state === null) return ["No MTA-STS policy"];
  if (state.mode === "none") return ["MTA-STS policy in mode none (no effect)"];
  if (state.mx_matched === null) return [`MTA-STS ${state.mode}`];
  if (state.mx_matched) return [`MTA-STS ${state.mode}: the MX host is listed in the policy${state.mode === "enforce" ? ", TLS verified" : ""}`];
  return [state.mode === "enforce" ? "MTA-STS enforce: no MX host is listed in the policy, nothing sent" : "MTA-STS testing: the MX host is not listed in the policy (sent anyway: testing mode only reports)"];
}

/** The reply that ended the transaction: the DATA answer, or the last refusal. */
function finalAnswer(events: Event[]): StoryStep {
  const answer = [...events].reverse().find((e) => e.stage === "data") ?? [...events].reverse().find((e) => e.code >= 400) ?? events.at(-1)!;
  // A refused recipient has its own step, with its reason and action.
  if (answer.stage === "rcpt") return { title: "Answer to the sender", badge: badgeOf(answer.code), lines: [`No message taken: the last recipient was answered ${answer.code} ${answer.enhanced}`] };
  const detail = detailOf(answer);
  return { title: "Answer to the sender", badge: badgeOf(answer.code), lines: [reasonInWords(answer), replyOf(answer), ...catchAllVerdict(detail)], ...actionFor(answer, detail) };
}

/** What the learning catch-all counted the message as, for its catch-all names (docs/aliases.md, "Learning catch-all"). */
function catchAllVerdict(detail: Detail): string[] {
  const learned = detail.catchall as { verdict?: string; why?: string[] } | undefined;
  if (!learned?.verdict) return [];
  return [`Learning catch-all: counted as ${learned.verdict}${learned.why?.length ? ` (${learned.why.join(", ")})` : ""}`];
}

const REASON_WORDS: Partial<Record<Reason, string>> = {
  delivered: "Forwarded",
  partly_delivered: "Forwarded to some destinations; the sender is told about the others",
  already_delivered: "A retry of a message already forwarded: nothing sent again",
  dropped: "Accepted and discarded (a disabled alias)",
  greylisted: "Greylisted: the first message from this sender; a real server retries later",
  dmarc_reject: "Refused: fails DMARC of the author domain, whose policy is reject",
  spf_fail: "Refused: SPF fails for the sender's domain",
  spam: "Refused as spam",
  gtube: "Refused: GTUBE test string",
  denylisted: "Refused: the sender is on the denylist",
  rate_limited: "Deferred: the sender's rate limit",
  unknown_recipient: "Refused: no such recipient",
  catchall_refused: "Refused: a catch-all name that received only spam (learning catch-all)",
  relay_denied: "Refused: not a domain served here",
  unverified_destination: "Deferred: the forwarding destination is not verified yet",
  refused_by_destination: "Refused by the destination",
  deferred_by_destination: "Deferred by the destination",
};

function reasonInWords(e: Event): string {
  const reason = e.reason as Reason | null;
  if (!reason) return "No reason recorded";
  return REASON_WORDS[reason] ?? `Reason: ${reason.replace(/_/g, " ")}`;
}

const ALLOW_REASONS: ReadonlySet<string> = new Set(["greylisted", "dmarc_reject", "spf_fail", "rate_limited", "denylisted"]);
const DENY_REASONS: ReadonlySet<string> = new Set(["spam", "gtube"]);

/** The one-click fix a refusal suggests: allowlist a wrongly refused sender, deny a spammer, allow a refused catch-all name again, resend a verification. */
function actionFor(e: Event, detail: Detail): { action: StoryAction } | Record<string, never> {
  const sender = e.mail_from;
  if (sender && e.reason && ALLOW_REASONS.has(e.reason)) return { action: { label: `Allowlist ${sender}`, path: "/lists/allow", field: "allow_value", value: sender } };
  if (sender && e.reason && DENY_REASONS.has(e.reason)) return { action: { label: `Deny ${sender}`, path: "/lists/deny", field: "deny_value", value: sender } };
  const [recipient] = recipientsOf(e);
  if (e.reason === "catchall_refused" && recipient) return { action: { label: `Allow ${recipient} again`, path: "/catch-all/allow", field: "address", value: recipient } };
  const unverified = Array.isArray(detail.unverified) ? (detail.unverified as string[]) : [];
  if (unverified[0]) return { action: { label: `Resend the verification mail to ${unverified[0]}`, path: "/destinations/resend", field: "address", value: unverified[0] } };
  return {};
}

/** An event with its session's events (oldest first) and their story; undefined when the event is gone. */
export async function storyOfEvent(db: DB, id: number): Promise<{ event: Event; session: Event[]; steps: StoryStep[] } | undefined> {
  const event = await eventById(db, id);
  if (!event) return undefined;
  const session = (await listEvents(db, { sessionId: event.session_id, limit: 200 })).reverse();
  return { event, session, steps: messageStory(session) };
}

/** The story as plain text: one step a paragraph, its badge as ✓, ✗, ! or ·. */
export function storyText(steps: StoryStep[]): string {
  const marks: Record<Badge, string> = { ok: "✓", fail: "✗", warn: "!", info: "·" };
  return steps.map((s) => [`${marks[s.badge]} ${s.title}`, ...s.lines.map((l) => `    ${l}`), ...(s.action ? [`    → ${s.action.label}`] : [])].join("\n")).join("\n\n");
}
