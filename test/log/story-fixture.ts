// Messages through the real pipeline, for the tests of the message story:
// forwarded (DKIM aligned), From rewritten (p=reject, no aligned DKIM),
// greylisted, refused by DMARC, partly delivered (one destination 550), matched
// by a regex rule, by a plus-addressed name, and held for an unverified destination.
import { generateKeyPairSync } from "node:crypto";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { listEvents } from "../../src/store/events.ts";
import { createToken } from "../../src/store/tokens.ts";
import type { Event } from "../../src/store/schema.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

export type StoryCase = "forwarded" | "rewritten" | "greylisted" | "dmarc_refused" | "partly_delivered" | "regex" | "plus_tag" | "unverified";

export interface StoryFixture {
  mf: TestMailferry;
  /** The events of each case's SMTP session, oldest first. */
  sessions: Record<StoryCase, Event[]>;
  close(): Promise<void>;
}

const senderKey = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "der" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
const SPF_PASS = "v=spf1 ip4:127.0.0.1 -all";

const zones = {
  "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
  "mx.dest.test": { A: ["127.0.0.2"] },
  "refuses.test": { MX: [{ priority: 10, exchange: "mx.refuses.test" }] },
  "mx.refuses.test": { A: ["127.0.0.3"] },
  "signed.test": { TXT: [SPF_PASS] },
  "_dmarc.signed.test": { TXT: ["v=DMARC1; p=reject"] },
  "sel1._domainkey.signed.test": { TXT: [dkimRecordValue({ algorithm: "rsa", public_key: (senderKey.publicKey as unknown as Buffer).toString("base64") })] },
  "strict.test": { TXT: [SPF_PASS] },
  "_dmarc.strict.test": { TXT: ["v=DMARC1; p=reject"] },
  "rejecter.test": { TXT: ["v=spf1 ip4:192.0.2.99 ~all"] },
  "_dmarc.rejecter.test": { TXT: ["v=DMARC1; p=reject"] },
  "grey.test": { TXT: [SPF_PASS] },
};

function message(id: string, fromDomain: string, to: string) {
  return `From: Sender <someone@${fromDomain}>\r\nTo: ${to}\r\nSubject: ${id}\r\nMessage-ID: <${id}@${fromDomain}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nBody of ${id}.\r\n`;
}

async function send(mf: TestMailferry, from: string, to: string, raw: string): Promise<void> {
  await sendMail(mf.smtpPort, { from, to, raw }).catch(() => {});
}

async function lastSession(mf: TestMailferry): Promise<Event[]> {
  // The recorder writes on the next turn of the event loop.
  await Bun.sleep(200);
  const [last] = await listEvents(mf.appliance.store.db, { limit: 1 });
  return (await listEvents(mf.appliance.store.db, { sessionId: last!.session_id, limit: 200 })).reverse();
}

export async function startStoryFixture(): Promise<StoryFixture> {
  const accepting = await startSink({ host: "127.0.0.2" });
  const refusing: Sink = await startSink({ host: "127.0.0.3", port: accepting.port, onRcpt: () => ({ code: 550, text: "5.1.1 No such user here" }) });
  const dns: DnsServer = await startDnsServer(zones);
  const mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=hello:user@dest.test,split:user@dest.test,split:user@refuses.test,/^shop-([a-z]+)$/:user+$1@dest.test" },
    env: { MAILFERRY_OUTBOUND_PORT: String(accepting.port) },
  });
  const signature = { signingDomain: "signed.test", selector: "sel1", privateKey: senderKey.privateKey as string };
  const signedRaw = message("story-forwarded", "signed.test", "hello@example.test");
  const { signatures } = await dkimSign(signedRaw, { ...signature, signatureData: [signature] });

  const sessions = {} as Record<StoryCase, Event[]>;
  await send(mf, "someone@signed.test", "hello@example.test", signatures + signedRaw);
  sessions.forwarded = await lastSession(mf);
  await send(mf, "someone@strict.test", "hello@example.test", message("story-rewritten", "strict.test", "hello@example.test"));
  sessions.rewritten = await lastSession(mf);
  await send(mf, "someone@rejecter.test", "hello@example.test", message("story-refused", "rejecter.test", "hello@example.test"));
  sessions.dmarc_refused = await lastSession(mf);
  await send(mf, "someone@signed.test", "split@example.test", message("story-partly", "signed.test", "split@example.test"));
  sessions.partly_delivered = await lastSession(mf);
  mf.appliance.config.greylist.delay = 300_000;
  await send(mf, "someone@grey.test", "hello@example.test", message("story-greylisted", "grey.test", "hello@example.test"));
  sessions.greylisted = await lastSession(mf);
  mf.appliance.config.greylist.delay = 0;
  await send(mf, "someone@signed.test", "shop-books@example.test", message("story-regex", "signed.test", "shop-books@example.test"));
  sessions.regex = await lastSession(mf);
  await send(mf, "someone@signed.test", "hello+news@example.test", message("story-plus", "signed.test", "hello+news@example.test"));
  sessions.plus_tag = await lastSession(mf);
  // Every outside destination must now be confirmed by its owner: a new alias waits for it.
  mf.appliance.config.delivery.verifyDestinations = "all";
  const { token } = await createToken(mf.appliance.store.db, "story-fixture", "admin");
  const created = await fetch(`${mf.httpUrl}api/v1/aliases`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ domain: "example.test", name: "fresh", recipients: ["new@dest.test"] }) });
  if (created.status !== 201) throw new Error(`alias fresh not created: ${created.status} ${await created.text()}`);
  await send(mf, "someone@signed.test", "fresh@example.test", message("story-unverified", "signed.test", "fresh@example.test"));
  sessions.unverified = await lastSession(mf);
  mf.appliance.config.delivery.verifyDestinations = "tokens";

  return {
    mf,
    sessions,
    async close() {
      await mf.stop();
      await dns.close();
      await accepting.close();
      await refusing.close();
    },
  };
}
