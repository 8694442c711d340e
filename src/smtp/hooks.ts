// The decisions of each SMTP stage, in the order the conversation reaches
// them (Haraka style: one hook per stage). Each returns the exact reply.
import type { Deliver } from "../delivery/index.ts";
import { findDomain } from "../store/domains.ts";
import type { DB } from "../store/db.ts";
import { type Mailbox, parseMailbox } from "./address.ts";
import { type Reply, reply } from "./reply.ts";
import type { InboundMessage, Session } from "./session.ts";

export interface StageHooks {
  connect(session: Session): Promise<Reply>;
  mailFrom(session: Session, address: string, params: EsmtpParams): Promise<Reply>;
  /** On acceptance also returns the parsed recipient, which the listener adds to the transaction. */
  rcptTo(session: Session, address: string, params: EsmtpParams): Promise<{ reply: Reply; recipient?: Mailbox }>;
  data(session: Session, message: InboundMessage): Promise<Reply>;
}

export const ACCEPT_CONNECT = reply(220, "2.0.0", "Connected");
export const ACCEPT_SENDER = reply(250, "2.1.0", "Sender OK");
export const ACCEPT_RECIPIENT = reply(250, "2.1.5", "Recipient OK");

/** ESMTP parameters of MAIL/RCPT by upper-case name; `true` for flags without a value. */
export type EsmtpParams = Record<string, string | true>;

// Parameters of the extensions advertised in EHLO (SIZE, 8BITMIME, SMTPUTF8); DSN is not offered.
const MAIL_PARAMS = new Set(["SIZE", "BODY", "SMTPUTF8"]);
const RCPT_PARAMS = new Set<string>();

/** RFC 5321 §4.1.1.11: a parameter we do not implement is refused, not silently dropped. */
export function paramsVerdict(params: EsmtpParams, allowed: Set<string>): Reply | null {
  const unknown = Object.keys(params).find((name) => !allowed.has(name));
  return unknown ? reply(555, "5.5.4", `Parameter ${unknown} not recognized or not implemented`) : null;
}

export function senderVerdict(address: string, params: EsmtpParams = {}): Reply {
  const badParam = paramsVerdict(params, MAIL_PARAMS);
  if (badParam) return badParam;
  if (address === "" || parseMailbox(address)) return ACCEPT_SENDER;
  return reply(501, "5.1.7", "Bad sender address syntax");
}

/** Never an open relay: only mail for domains managed here is accepted. */
export function recipientVerdict(mailbox: Mailbox | null, managed: boolean): Reply {
  if (!mailbox) return reply(501, "5.1.3", "Bad recipient address syntax");
  if (!managed) return reply(550, "5.7.1", `Relaying denied: ${mailbox.domain} is not a domain served here`);
  return ACCEPT_RECIPIENT;
}

export function sizeVerdict(message: InboundMessage, maxSize: number): Reply | null {
  return message.oversized ? reply(552, "5.3.4", `Message size exceeds the limit of ${maxSize} bytes`) : null;
}

export interface HookDeps {
  db: DB;
  maxSize: number;
  deliver: Deliver;
}

export function createHooks({ db, maxSize, deliver }: HookDeps): StageHooks {
  return {
    connect: async () => ACCEPT_CONNECT,
    mailFrom: async (_session, address, params) => senderVerdict(address, params),
    async rcptTo(_session, address, params) {
      const badParam = paramsVerdict(params, RCPT_PARAMS);
      if (badParam) return { reply: badParam };
      const mailbox = parseMailbox(address);
      const managed = !!mailbox && !mailbox.isLiteral && !!(await findDomain(db, mailbox.domain));
      const verdict = recipientVerdict(mailbox, managed);
      return verdict === ACCEPT_RECIPIENT ? { reply: verdict, recipient: mailbox! } : { reply: verdict };
    },
    async data(session, message) {
      return sizeVerdict(message, maxSize) ?? (await deliver(session, message));
    },
  };
}
