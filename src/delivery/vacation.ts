// Vacation replies: from the alias (the outbox signs them with its domain's
// key), with the null envelope sender, at most once per sender per 4 days,
// and never where automatic mail must not go (the backscatter rules).
import { randomUUID } from "node:crypto";
import MailComposer from "nodemailer/lib/mail-composer";
import type { Logger } from "../log.ts";
import { automaticReplyBlocked } from "../policy/backscatter.ts";
import { rootDomain } from "../policy/identity.ts";
import { headerValue } from "../mail/headers.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";
import type { DB } from "../store/db.ts";
import type { Vacation } from "../store/schema.ts";
import { claimVacationReply, vacationOf } from "../store/vacations.ts";
import type { Outbox } from "./outbox.ts";

/** Enabled, and today (UTC) is within its dates. */
export function vacationActive(v: Pick<Vacation, "enabled" | "start_date" | "end_date">, now: Date): boolean {
  const today = now.toISOString().slice(0, 10);
  return v.enabled === 1 && (!v.start_date || today >= v.start_date) && (!v.end_date || today <= v.end_date);
}

/** Known senders are answered per address; others per root domain, so one domain cannot farm replies. */
export function replyKey(sender: string, allowlisted: boolean): string {
  const address = sender.toLowerCase();
  return allowlisted ? address : rootDomain(address.slice(address.lastIndexOf("@") + 1));
}

export interface ReplyInput {
  alias: string;
  to: string;
  subject: string;
  message: string;
  inReplyTo: string | null;
  references: string | null;
  hostname: string;
  now: Date;
}

export function buildVacationReply({ alias, to, subject, message, inReplyTo, references, hostname, now }: ReplyInput): Promise<Buffer> {
  const mail = new MailComposer({
    from: alias,
    to,
    subject,
    text: message,
    date: now,
    messageId: `<${randomUUID()}@${hostname}>`,
    ...(inReplyTo ? { inReplyTo, references: [references, inReplyTo].filter(Boolean).join(" ") } : {}),
    headers: { "Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All" },
  });
  return mail.compile().build();
}

export interface VacationResponder {
  /** After a message was accepted for delivery: answer for each recipient alias on vacation. */
  afterDelivery(session: Readonly<Session>, message: InboundMessage): Promise<void>;
}

export function createVacationResponder({ db, outbox, hostname, logger, now = () => new Date() }: { db: DB; outbox: Outbox; hostname: string; logger: Logger; now?: () => Date }): VacationResponder {
  return {
    async afterDelivery(session, message) {
      const sender = session.mailFrom ?? "";
      for (const r of session.recipients) {
        if (r.route.action !== "deliver") continue;
        const vacation = await vacationOf(db, r.route.alias.id);
        if (!vacation || !vacationActive(vacation, now())) continue;
        const blocked = automaticReplyBlocked(sender, message.headers);
        if (blocked) {
          logger.info("vacation.suppressed", { session: session.id, alias: r.address, reason: blocked });
          continue;
        }
        if (!(await claimVacationReply(db, vacation.alias_id, replyKey(sender, session.allowlisted), now().getTime()))) continue;
        const reply = await buildVacationReply({
          alias: r.address,
          to: sender,
          subject: vacation.subject,
          message: vacation.message,
          inReplyTo: headerValue(message.headers, "message-id") ?? null,
          references: headerValue(message.headers, "references") ?? null,
          hostname,
          now: now(),
        });
        await outbox.enqueue({ from: "", to: [sender], raw: reply });
        logger.info("vacation.sent", { session: session.id, alias: r.address, to: sender });
      }
    },
  };
}
