// "Send a test message" (docs/admin-ui.md): mailferry writes a short message
// from an address of the alias's domain to the alias, DKIM-signs it like all
// mail it writes itself (delivery/originated.ts), resolves the alias with the
// live routing rules and sends the copies through the relay forwarded mail
// uses (MX lookup, MTA-STS, STARTTLS, smarthost), waiting for the answers so
// the admin sees each destination's reply - or why mailferry did not send there.
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import MailComposer from "nodemailer/lib/mail-composer";
import type { Config } from "../config/index.ts";
import { signOriginated } from "../delivery/originated.ts";
import type { DeliveryResult, Relay } from "../delivery/relay.ts";
import { UserError } from "../errors.ts";
import type { Route, Target } from "../routing/resolve.ts";
import type { Router } from "../routing/router.ts";
import { type AliasRule, aliasLabel, placeName } from "../aliases/rules.ts";
import { decision, destinationReason } from "../mail/decision.ts";
import { formatReply, type Reply } from "../mail/reply.ts";
import { aliasById } from "../store/aliases.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { mailLogEvent } from "../store/events.ts";
import type { NewEvent } from "../store/schema.ts";

/** The running server's parts a test message goes through (the CLI has none: it cannot send one). */
export interface Forwarding {
  router: Router;
  relay: Relay;
  recordEvent: (event: NewEvent) => Promise<void>;
}

/** What became of the test message for one destination. */
export type TestOutcome =
  /** A destination mail host answered (`mx`), or mailferry could not reach one (`mx` null: DNS, connection, TLS policy). */
  | { target: string; kind: "answered"; reply: Reply; mx: string | null; tls: string | null }
  /** Not sent there, and why. */
  | { target: string; kind: "skipped"; reason: string };

export interface TestReport {
  /** The address the message was written to. */
  address: string;
  from: string;
  subject: string;
  /** The DKIM signing domain, or null when no key covers the From domain. */
  signedBy: string | null;
  /** Set when mailferry itself would not forward mail for the address at all. */
  refused: string | null;
  outcomes: TestOutcome[];
}

export const TEST_SENDER_LOCAL = "mailferry-test";

/**
 * The address to write to: an exact alias's own address; for a catch-all or
 * regex alias the admin names one, which must be on the alias's domain.
 */
export function testAddress(alias: AliasRule, requested: string): string {
  if (alias.matcher === "exact") return `${alias.pattern}@${placeName(alias)}`;
  const address = requested.trim();
  if (!address) throw new UserError("invalid", `enter an address that ${aliasLabel(alias)} matches, e.g. someone@${placeName(alias)}`, "address");
  if (!address.toLowerCase().endsWith(`@${placeName(alias)}`)) throw new UserError("invalid", `the address must be on ${placeName(alias)}`, "address");
  return address;
}

/** The routing verdict as a plan: the address targets to send to, and the targets (or the whole address) left out, with why. */
export function testPlan(verdict: Route, alias: AliasRule): { send: Extract<Target, { kind: "address" }>[]; skipped: TestOutcome[]; refused: string | null } {
  if (verdict.action === "refuse") return { send: [], skipped: [], refused: `mailferry answers senders ${formatReply(verdict.reply)}` };
  if (verdict.action === "drop") return { send: [], skipped: [], refused: "the alias is disabled: mailferry accepts mail for it and discards it" };
  if (verdict.alias.id !== alias.id) {
    return { send: [], skipped: [], refused: `this address is routed by the alias ${verdict.alias.label} on ${verdict.alias.domain}, not by ${aliasLabel(alias)}` };
  }
  const skipped: TestOutcome[] = [
    ...verdict.targets.flatMap((t): TestOutcome[] =>
      t.kind === "webhook" ? [{ target: t.url, kind: "skipped", reason: "webhook: not called for a test; real mail to this alias is POSTed there as JSON" }] : [],
    ),
    ...(verdict.unverified ?? []).map((address): TestOutcome => ({ target: address, kind: "skipped", reason: "not verified yet: mail is forwarded there once its owner confirms (see Destinations)" })),
  ];
  return { send: verdict.targets.filter((t): t is Extract<Target, { kind: "address" }> => t.kind === "address"), skipped, refused: null };
}

const testSubject = (to: string) => `Test message for ${to}`;

export function buildTestMessage({ from, to, admin, targets, hostname, messageId, now }: { from: string; to: string; admin: string; targets: string[]; hostname: string; messageId: string; now: Date }): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: "mailferry test", address: from },
    to,
    subject: testSubject(to),
    text: [
      `This is a test message from the mailferry admin UI at ${hostname}, sent by ${admin} to ${to}.`,
      "",
      `mailferry forwards mail for ${to} to: ${targets.join(", ")}.`,
      "If you are reading this, forwarding to this mailbox works. No need to reply.",
    ].join("\n"),
    date: now,
    messageId,
    headers: { "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All" },
  });
  return mail.compile().build();
}

export function testMessageService({ db, config, forwarding, now = Date.now }: { db: DB; config: Config; forwarding?: Forwarding; now?: () => number }) {
  /** Sends through the relay; past the forwarding time bound the remaining destinations are reported as unanswered (the mail log gets their answer later). */
  async function relay(fwd: Forwarding, from: string, targets: Extract<Target, { kind: "address" }>[], message: Buffer, record: (r: DeliveryResult) => Promise<void>): Promise<TestOutcome[]> {
    const envelope = { from, to: targets.map((t) => ({ address: t.address, domain: t.domain, port: t.port ?? config.outbound.port })), message: () => Readable.from([message]) };
    const sending = fwd.relay.send([envelope]).then(async (results) => {
      for (const r of results) await record(r);
      return results.map((r): TestOutcome => ({ target: r.address, kind: "answered", reply: r.reply, mx: r.mx, tls: r.tls }));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), config.outbound.messageTimeout)));
    const outcomes = await Promise.race([sending, late]).finally(() => clearTimeout(timer));
    const seconds = Math.round(config.outbound.messageTimeout / 1000);
    return outcomes ?? targets.map((t) => ({ target: t.address, kind: "skipped", reason: `no answer within ${seconds} s; the mail log shows the result when it comes` }));
  }

  return {
    async send(actor: Actor, aliasId: number, requested = ""): Promise<TestReport> {
      if (!forwarding) throw new UserError("invalid", "test messages are sent by the running server: use the admin UI");
      const alias = await aliasById(db, aliasId);
      if (!alias) throw new UserError("not_found", `alias ${aliasId} does not exist`, "address");
      const address = testAddress(alias, requested);
      const plan = testPlan(await forwarding.router.route(address), alias);
      const from = `${TEST_SENDER_LOCAL}@${alias.domain}`;
      const report: TestReport = { address, from, subject: testSubject(address), signedBy: null, refused: plan.refused, outcomes: plan.skipped };
      if (plan.send.length) {
        const messageId = `<${randomUUID()}@${config.hostname}>`;
        const raw = await buildTestMessage({ from, to: address, admin: actor.name, targets: plan.send.map((t) => t.address), hostname: config.hostname, messageId, now: new Date(now()) });
        // Signed as all mail mailferry writes itself: with the key of the From domain.
        const { message, signedBy } = await signOriginated(db, config.hostname, raw);
        const event = { session: `test-${randomUUID()}`, actor, address, from, subject: report.subject, messageId };
        const record = (result: DeliveryResult) => forwarding.recordEvent(testEvent({ ...event, result, at: now() }));
        report.signedBy = signedBy;
        report.outcomes = [...(await relay(forwarding, from, plan.send, message, record)), ...plan.skipped];
      }
      const delivered = report.outcomes.filter((o) => o.kind === "answered" && o.reply.code < 400).length;
      await audit(db, actor, "alias.test_message", address, null, { delivered, refused: report.refused, outcomes: report.outcomes.map(outcomeSummary) });
      return report;
    },
  };
}

const outcomeSummary = (o: TestOutcome) => (o.kind === "answered" ? { target: o.target, reply: formatReply(o.reply), mx: o.mx } : { target: o.target, skipped: o.reason });

/** The mail-log line for one destination's answer, like a forwarded copy's (detail.test_message tells them apart). */
function testEvent(e: { session: string; actor: Actor; address: string; from: string; subject: string; messageId: string; result: DeliveryResult; at: number }): NewEvent {
  const { result, address } = e;
  return mailLogEvent({
    at: e.at,
    sessionId: e.session,
    remoteIp: e.actor.ip,
    stage: "delivery",
    decision: decision(result.reply, destinationReason(result.reply, false)),
    mailFrom: e.from,
    recipients: [result.address.toLowerCase()],
    domainOf: address,
    message: { headers: [{ name: "message-id", value: e.messageId }, { name: "subject", value: e.subject }] },
    detail: { original_recipient: address, mx: result.mx, tls: result.tls, mta_sts: result.mtaSts, duration_ms: result.durationMs, test_message: true, by: e.actor.name },
  });
}
