// Inbound SPF/DKIM/DMARC/ARC with enforcement, and the outbound ARC seal on
// every copy plus a DKIM signature when the From was rewritten (or
// forwarding.dkim_sign = always), verified at the destination with mailauth
// and independently with dkimpy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { authenticate } from "mailauth";
import { sealMessage } from "mailauth/lib/arc";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { listDkimKeys } from "../../src/store/dkim-keys.ts";
import { listEvents } from "../../src/store/events.ts";
import { createToken } from "../../src/store/tokens.ts";
import { addAllow } from "../../src/store/allowlist.ts";
import { updateDomainSettings } from "../../src/store/domains.ts";
import { dkimpyVerify, hasDkimpy } from "../support/dkim-verify.ts";
import { type DnsServer, startDnsServer, type Zones } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

const key = () => generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "der" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
const senderKey = key();
const otherKey = key();
const prevHopKey = key();
const published = (k: ReturnType<typeof key>) => dkimRecordValue({ algorithm: "rsa", public_key: (k.publicKey as unknown as Buffer).toString("base64") });

const SPF_PASS = "v=spf1 ip4:127.0.0.1 -all";
const SPF_FAIL = "v=spf1 ip4:192.0.2.99 -all";
const SPF_SOFT = "v=spf1 ip4:192.0.2.99 ~all";

const zones: Zones = {
  "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
  "mx.dest.test": { A: ["127.0.0.2"] },
  "signed.test": { TXT: [SPF_PASS] },
  "_dmarc.signed.test": { TXT: ["v=DMARC1; p=reject"] },
  "sel1._domainkey.signed.test": { TXT: [published(senderKey)] },
  "wrongkey.test": { TXT: [SPF_SOFT] },
  "sel1._domainkey.wrongkey.test": { TXT: [published(otherKey)] },
  "rejecter.test": { TXT: [SPF_SOFT] },
  "_dmarc.rejecter.test": { TXT: ["v=DMARC1; p=reject"] },
  "pctzero.test": { TXT: [SPF_SOFT] },
  "_dmarc.pctzero.test": { TXT: ["v=DMARC1; p=reject; pct=0"] },
  "child.parent.test": { TXT: [SPF_SOFT] },
  "_dmarc.parent.test": { TXT: ["v=DMARC1; p=none; sp=reject"] },
  "hardfail.test": { TXT: [SPF_FAIL] },
  "hardfail-signed.test": { TXT: [SPF_FAIL] },
  "sel1._domainkey.hardfail-signed.test": { TXT: [published(senderKey)] },
  "softfail.test": { TXT: [SPF_SOFT] },
  "tempfail.test": { TXT: [SPF_PASS] },
  "_dmarc.tempfail.test": { rcode: "SERVFAIL" },
  "friendly.test": { TXT: [SPF_PASS] },
  "_dmarc.friendly.test": { TXT: ["v=DMARC1; p=reject"] },
  "sel1._domainkey.friendly.test": { TXT: [published(otherKey)] },
  "intact.test": { TXT: [SPF_PASS] },
  "_dmarc.intact.test": { TXT: ["v=DMARC1; p=reject"] },
  "sel1._domainkey.intact.test": { TXT: [published(senderKey)] },
  "quarantine.test": { TXT: [SPF_SOFT] },
  "_dmarc.quarantine.test": { TXT: ["v=DMARC1; p=quarantine"] },
  "allowed.test": { TXT: [SPF_FAIL] },
  "_dmarc.allowed.test": { TXT: ["v=DMARC1; p=reject"] },
  "arc._domainkey.prevhop.test": { TXT: [published(prevHopKey)] },
  "list.test": { TXT: [SPF_PASS] },
};

let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer(zones);
  mf = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:user@dest.test,team:other@dest.test" }, env: { MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
  // Publish mailferry's own key, as the admin would after `mailferry domain dns`.
  for (const k of await listDkimKeys(mf.appliance.store.db, "example.test")) dns.zones[`${k.selector}._domainkey.example.test`] = { TXT: [dkimRecordValue(k)] };
  await addAllow(mf.appliance.store.db, "allowed.test");
  await updateDomainSettings(mf.appliance.store.db, "example.test", { acceptSubdomains: true });
}, 30_000);
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

let n = 0;
function message(fromDomain: string, extra = "") {
  const id = `auth${++n}`;
  return { id, raw: `From: Sender <someone@${fromDomain}>\r\nTo: hello@example.test\r\nSubject: ${id}\r\nMessage-ID: <${id}@${fromDomain}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n${extra}\r\nBody of ${id}.\r\n` };
}

async function signed(raw: string, domain: string, privateKey: string, selector = "sel1") {
  const signature = { signingDomain: domain, selector, privateKey };
  const { signatures } = await dkimSign(raw, { ...signature, signatureData: [signature] });
  return signatures + raw;
}

async function send(raw: string, from: string) {
  return sendMail(mf.smtpPort, { from, to: "hello@example.test", raw }).then(
    (info) => String(info.response),
    (err) => `${err.responseCode} ${String(err.response).replace(/^\d{3} /, "")}`,
  );
}

const copyOf = (id: string) => sink.waitForMessages(0).then((all) => all.find((m) => m.raw.toString().includes(`Subject: ${id}\r\n`)));
async function lastDataAuth() {
  const [event] = await listEvents(mf.appliance.store.db, { stage: "data", limit: 1 });
  return JSON.parse(event!.detail!).auth as Record<string, string>;
}

describe("inbound verdicts", () => {
  test("DKIM pass, SPF pass, DMARC pass: forwarded with the results prepended", async () => {
    const m = message("signed.test");
    expect(await send(await signed(m.raw, "signed.test", senderKey.privateKey as string), "someone@signed.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ spf: "pass", dkim: "pass", dmarc: "pass" });
    const copy = (await copyOf(m.id))!.raw.toString();
    expect(copy).toContain(`Authentication-Results: ${TEST_HOSTNAME};`);
    expect(copy).toMatch(/Received-SPF: pass /);
  });

  test("DKIM fail (the key does not match) and DKIM none are recorded, mail passes without DMARC reject", async () => {
    const m = message("wrongkey.test");
    expect(await send(await signed(m.raw, "wrongkey.test", senderKey.privateKey as string), "someone@wrongkey.test")).toStartWith("250");
    expect((await lastDataAuth()).dkim).toBe("fail");
    expect(await send(message("softfail.test").raw, "someone@softfail.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ dkim: "none", spf: "softfail" });
    expect(await send(message("nospf.test").raw, "someone@nospf.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ spf: "none", dmarc: "none" });
  });

  test("DMARC fail with p=reject: 550 5.7.1; with pct=0: passes; sp=reject applies to subdomains", async () => {
    expect(await send(message("rejecter.test").raw, "someone@rejecter.test")).toBe("550 5.7.1 Rejected by the DMARC policy of rejecter.test: the message fails SPF and DKIM alignment");
    expect(await send(message("pctzero.test").raw, "someone@pctzero.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ dmarc: "fail" });
    expect(await send(message("child.parent.test").raw, "someone@child.parent.test")).toStartWith("550 5.7.1 Rejected by the DMARC policy of child.parent.test");
  });

  test("SPF hard fail: 550 5.7.23, unless an aligned DKIM signature passes", async () => {
    expect(await send(message("hardfail.test").raw, "someone@hardfail.test")).toBe("550 5.7.23 SPF validation failed: the sending host is not allowed to send for this sender's domain");
    const m = message("hardfail-signed.test");
    expect(await send(await signed(m.raw, "hardfail-signed.test", senderKey.privateKey as string), "someone@hardfail-signed.test")).toStartWith("250");
  });

  test("DMARC quarantine and SPF softfail pass through with their results recorded", async () => {
    expect(await send(message("quarantine.test").raw, "someone@quarantine.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ spf: "softfail", dmarc: "fail" });
  });

  test("a DNS temporary error during the checks answers 421, never a silent pass", async () => {
    expect(await send(message("tempfail.test").raw, "someone@tempfail.test")).toBe("421 4.7.0 Temporary DNS failure while checking SPF, DKIM or DMARC, please try again later");
  });

  test("an allowlisted sender is exempt from DMARC and SPF refusal", async () => {
    expect(await send(message("allowed.test").raw, "someone@allowed.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ spf: "fail", dmarc: "fail" });
  });

  test("Authentication-Results claiming our hostname are removed; others are kept", async () => {
    const m = message("list.test", `Authentication-Results: ${TEST_HOSTNAME}; dkim=pass header.d=paypal.test\r\nAuthentication-Results: other.test; spf=pass\r\n`);
    expect(await send(m.raw, "someone@list.test")).toStartWith("250");
    const copy = (await copyOf(m.id))!.raw.toString();
    expect(copy).not.toContain("header.d=paypal.test");
    expect(copy).toContain("Authentication-Results: other.test; spf=pass");
  });
});

describe("what reaches the destination verifies", () => {
  // The test DNS as a resolver for mailauth at the "destination".
  const verifier = () => createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000 }).forMailauth;

  const ourSignatures = (copy: Buffer) => copy.toString().match(/^DKIM-Signature:[^]*?\bd=example\.test;/gm) ?? [];

  test("mailferry's ARC seal passes and an earlier ARC hop is carried (i=2); the From is the author's, so no DKIM signature of ours", async () => {
    const m = message("signed.test");
    const dkimSigned = await signed(m.raw, "signed.test", senderKey.privateKey as string);
    // A previous forwarder sealed it (i=1) with its own verdicts.
    const arcSet = await sealMessage(Buffer.from(dkimSigned), {
      signingDomain: "prevhop.test",
      selector: "arc",
      privateKey: prevHopKey.privateKey as string,
      authResults: "prevhop.test; spf=pass smtp.mailfrom=signed.test; dkim=pass header.d=signed.test",
      cv: "none",
    });
    expect(await send(arcSet.toString() + dkimSigned, "someone@signed.test")).toStartWith("250");
    expect((await lastDataAuth()).arc).toBe("pass");
    const copy = (await copyOf(m.id))!.raw;
    const result = await authenticate(copy, { ip: "127.0.0.1", helo: TEST_HOSTNAME, sender: "x@mx.mailferry.test", mta: "dest.test", resolver: verifier() });
    const bySigner = (domain: string) => result.dkim.results.find((r) => r.signingDomain === domain)?.status.result;
    expect(bySigner("example.test")).toBeUndefined();
    expect(bySigner("signed.test")).toBe("pass");
    expect(result.arc && result.arc.status.result).toBe("pass");
    expect(result.arc && result.arc.i).toBe(2);
    expect(copy.toString()).toMatch(/ARC-Authentication-Results: i=2; mx\.mailferry\.test;/);
  });

  test("mail for a subdomain address is sealed with the key of the domain whose alias took it", async () => {
    const m = message("signed.test");
    const raw = (await signed(m.raw, "signed.test", senderKey.privateKey as string)).replace("To: hello@example.test", "To: hello@team.example.test");
    expect(await sendMail(mf.smtpPort, { from: "someone@signed.test", to: "hello@team.example.test", raw }).then((i) => String(i.response))).toStartWith("250");
    const copy = (await copyOf(m.id))!.raw;
    expect(copy.toString()).toContain("X-Original-To: hello@team.example.test");
    expect(copy.toString()).toMatch(/^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=example\.test;/m);
    const result = await authenticate(copy, { ip: "127.0.0.1", helo: TEST_HOSTNAME, sender: "x@mx.mailferry.test", mta: "dest.test", resolver: verifier() });
    expect(result.arc && result.arc.status.result).toBe("pass");
  });

  if (!hasDkimpy) {
    console.warn("\n*** python3-dkim is NOT installed: the independent DKIM/ARC verification with dkimpy is SKIPPED. Install it: apt-get install python3-dkim ***\n");
  }
  /** Sends a message sealed by a previous hop and signed by its author's domain; the copy as it arrived. */
  async function forwardSignedAndSealed(fromDomain: string, privateKey: string) {
    const m = message(fromDomain);
    const original = await signed(m.raw, fromDomain, privateKey);
    const arcSet = await sealMessage(Buffer.from(original), { signingDomain: "prevhop.test", selector: "arc", privateKey: prevHopKey.privateKey as string, authResults: `prevhop.test; dkim=pass header.d=${fromDomain}`, cv: "none" });
    expect(await send(arcSet.toString() + original, `someone@${fromDomain}`)).toStartWith("250");
    return (await copyOf(m.id))!.raw;
  }

  test.skipIf(!hasDkimpy)("From untouched: dkimpy passes the ARC chain with our set, and the copy carries no DKIM signature of ours", async () => {
    const copy = await forwardSignedAndSealed("intact.test", senderKey.privateKey as string);
    expect(copy.toString()).not.toContain("X-Original-From");
    expect(ourSignatures(copy)).toEqual([]);
    expect(copy.toString()).toMatch(/^ARC-Seal: i=2; [^]*?\bd=example\.test;/m);
    // The top DKIM-Signature is the author's, untouched by forwarding.
    expect(await dkimpyVerify(copy, dns)).toEqual({ pass: true, domain: "intact.test", selector: "sel1", arc: "pass" });
  });

  test.skipIf(!hasDkimpy)("From rewritten: dkimpy verifies our DKIM signature (the one DMARC aligns with) and the ARC chain", async () => {
    const copy = await forwardSignedAndSealed("friendly.test", senderKey.privateKey as string);
    expect(copy.toString()).toContain('From: "Sender via hello@example.test" <hello@example.test>\r\n');
    expect(ourSignatures(copy)).toHaveLength(1);
    expect(await dkimpyVerify(copy, dns)).toMatchObject({ pass: true, domain: "example.test", arc: "pass" });
  });

  test.skipIf(!hasDkimpy)("one message to two aliases of a domain: both copies carry the same ARC set, made once, and dkimpy passes each", async () => {
    const m = message("intact.test");
    const original = await signed(m.raw, "intact.test", senderKey.privateKey as string);
    const info = await sendMail(mf.smtpPort, { from: "someone@intact.test", to: ["hello@example.test", "team@example.test"], raw: original });
    expect(String(info.response)).toStartWith("250");
    const copies = await sink.waitForMessages(0).then((all) => all.filter((c) => c.raw.toString().includes(`Subject: ${m.id}\r\n`)).map((c) => c.raw.toString()));
    expect(copies.map((c) => /^X-Original-To: (.*)$/m.exec(c)?.[1]?.trim()).sort()).toEqual(["hello@example.test", "team@example.test"]);
    const arcSet = (copy: string) => copy.slice(0, copy.indexOf("Received: "));
    expect(arcSet(copies[0]!)).toMatch(/^ARC-Seal: i=1; /);
    expect(arcSet(copies[1]!)).toBe(arcSet(copies[0]!));
    for (const copy of copies) expect(await dkimpyVerify(Buffer.from(copy), dns)).toEqual({ pass: true, domain: "intact.test", selector: "sel1", arc: "pass" });
  });

  test.skipIf(!hasDkimpy)("forwarding.dkim_sign = always (set through the API, applied at once): the untouched-From copy is DKIM-signed by us again", async () => {
    const { token } = await createToken(mf.appliance.store.db, "signing", "admin");
    const patch = (value: string | null) =>
      fetch(`${mf.httpUrl}api/v1/settings`, { method: "PATCH", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ "forwarding.dkim_sign": value }) });
    expect((await patch("sometimes")).status).toBe(422);
    expect((await patch("always")).status).toBe(200);
    try {
      const copy = await forwardSignedAndSealed("intact.test", senderKey.privateKey as string);
      expect(ourSignatures(copy)).toHaveLength(1);
      expect(await dkimpyVerify(copy, dns)).toMatchObject({ pass: true, domain: "example.test", arc: "pass" });
    } finally {
      expect((await patch(null)).status).toBe(200);
    }
    expect(mf.appliance.config.forwarding.dkimSign).toBe("rewritten");
  });
});

describe("friendly-from", () => {
  test("p=reject sender whose DKIM is broken (DMARC passed only via SPF): From is rewritten, original kept", async () => {
    const m = message("friendly.test");
    expect(await send(await signed(m.raw, "friendly.test", senderKey.privateKey as string), "someone@friendly.test")).toStartWith("250");
    expect(await lastDataAuth()).toMatchObject({ spf: "pass", dkim: "fail", dmarc: "pass" });
    const copy = (await copyOf(m.id))!.raw.toString();
    expect(copy).toContain('From: "Sender via hello@example.test" <hello@example.test>\r\n');
    expect(copy).toContain("X-Original-From: Sender <someone@friendly.test>\r\n");
    expect(copy).toContain("Reply-To: Sender <someone@friendly.test>\r\n");
    expect(copy).not.toMatch(/^From: Sender <someone@friendly\.test>/m);
  });

  test("a sender with intact aligned DKIM keeps its From", async () => {
    const m = message("intact.test");
    expect(await send(await signed(m.raw, "intact.test", senderKey.privateKey as string), "someone@intact.test")).toStartWith("250");
    const copy = (await copyOf(m.id))!.raw.toString();
    expect(copy).toContain("\r\nFrom: Sender <someone@intact.test>\r\n");
    expect(copy).not.toContain("X-Original-From");
  });

  test("an existing Reply-To is kept", async () => {
    const m = message("friendly.test", "Reply-To: desk@friendly.test\r\n");
    expect(await send(m.raw, "someone@friendly.test")).toStartWith("250");
    const copy = (await copyOf(m.id))!.raw.toString();
    expect(copy).toContain("Reply-To: desk@friendly.test\r\n");
    expect(copy.match(/^Reply-To:/gm)).toHaveLength(1);
  });
});
