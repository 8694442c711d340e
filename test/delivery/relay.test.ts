// Forwarding end to end: a real client -> mailferry -> sink MX servers on
// 127.0.0.x found through the test DNS server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listEvents } from "../../src/store/events.ts";
import type { Event } from "../../src/store/schema.ts";
import { storyOfEvent, storyText } from "../../src/service/story.ts";
import { reverseName } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { createTestCa } from "../support/pki.ts";
import { type Sink, startSinks } from "../support/sink.ts";
import { sendMail, SmtpTalk } from "../support/smtp-client.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let mf: TestMailferry;
let gmail: Sink, two: Sink, brokenTls: Sink, strict: Sink, dying: Sink, senders: Sink, verified: Sink, selfSigned: Sink;
let stsServer: ReturnType<typeof Bun.serve>;
let dir: string;
let slowDeferrals = 0;

const mx = (host: string, ip: string) => ({ [host.replace(/^mx\./, "")]: { MX: [{ priority: 10, exchange: host }] }, [host]: { A: [ip] } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mailferry-relay-"));
  const ca = createTestCa();
  writeFileSync(join(dir, "ca.pem"), ca.cert);
  let sinksVerified: Sink, sinksSelfSigned: Sink;
  [gmail, two, brokenTls, strict, dying, senders, sinksVerified, sinksSelfSigned] = await startSinks([
    { host: "127.0.0.2", onRcpt: (rcpt) => (rcpt.startsWith("nobody@") ? { code: 550, text: "5.1.1 The email account that you tried to reach does not exist" } : undefined) },
    { host: "127.0.0.3", onRcpt: (rcpt) => (rcpt.startsWith("slow@") && slowDeferrals-- > 0 ? { code: 451, text: "4.7.1 Greylisted, please try again" } : undefined) },
    { host: "127.0.0.4", tls: "broken" },
    { host: "127.0.0.5", tls: "broken" },
    { host: "127.0.0.6", dropAfterDataBytes: 2000 },
    { host: "127.0.0.9" },
    { host: "127.0.0.10", credentials: ca.issue("mx.stsok.test") },
    { host: "127.0.0.11" },
  ]) as [Sink, Sink, Sink, Sink, Sink, Sink, Sink, Sink];
  verified = sinksVerified;
  selfSigned = sinksSelfSigned;
  const policyCert = ca.issue("mta-sts.sts.test", "mta-sts.stsok.test", "mta-sts.stsbad.test", "mta-sts.stsself.test", "mta-sts.ststesting.test");
  const policies: Record<string, string> = { "mta-sts.sts.test": "mx.sts.test", "mta-sts.stsok.test": "mx.stsok.test", "mta-sts.stsbad.test": "mx.elsewhere.test", "mta-sts.stsself.test": "mx.stsself.test", "mta-sts.ststesting.test": "mx.elsewhere.test" };
  stsServer = Bun.serve({
    hostname: "127.0.0.7",
    port: 0,
    tls: { cert: policyCert.cert, key: policyCert.key },
    fetch: (req) => {
      const mxHost = policies[req.headers.get("host") ?? ""];
      if (new URL(req.url).pathname !== "/.well-known/mta-sts.txt" || !mxHost) return new Response("not found", { status: 404 });
      const mode = req.headers.get("host") === "mta-sts.ststesting.test" ? "testing" : "enforce";
      return new Response(`version: STSv1\nmode: ${mode}\nmx: ${mxHost}\nmax_age: 86400\n`, { headers: { "content-type": "text/plain" } });
    },
  });
  dns = await startDnsServer({
    ...mx("mx.gmail.test", "127.0.0.2"),
    "googlemail.test": { MX: [{ priority: 5, exchange: "mx.gmail.test" }] },
    ...mx("mx.two.test", "127.0.0.3"),
    ...mx("mx.broken-tls.test", "127.0.0.4"),
    ...mx("mx.sts.test", "127.0.0.5"),
    "_mta-sts.sts.test": { TXT: ["v=STSv1; id=20261125"] },
    "mta-sts.sts.test": { A: ["127.0.0.7"] },
    ...mx("mx.stsok.test", "127.0.0.10"),
    "_mta-sts.stsok.test": { TXT: ["v=STSv1; id=1"] },
    "mta-sts.stsok.test": { A: ["127.0.0.7"] },
    ...mx("mx.stsbad.test", "127.0.0.10"),
    "_mta-sts.stsbad.test": { TXT: ["v=STSv1; id=1"] },
    "mta-sts.stsbad.test": { A: ["127.0.0.7"] },
    ...mx("mx.stsself.test", "127.0.0.11"),
    "_mta-sts.stsself.test": { TXT: ["v=STSv1; id=1"] },
    "mta-sts.stsself.test": { A: ["127.0.0.7"] },
    ...mx("mx.ststesting.test", "127.0.0.10"),
    "_mta-sts.ststesting.test": { TXT: ["v=STSv1; id=1"] },
    "mta-sts.ststesting.test": { A: ["127.0.0.7"] },
    ...mx("mx.dying.test", "127.0.0.6"),
    ...mx("mx.sender.test", "127.0.0.9"),
    "servfail.test": { rcode: "SERVFAIL" },
    ...mx("mx.unreachable.test", "127.0.0.8"),
    "nullmx.test": { MX: [{ priority: 0, exchange: "." }] },
    [reverseName("127.0.0.1")]: { PTR: ["client.loopback.test"] },
    [TEST_HOSTNAME]: { A: ["127.0.0.1"] },
  });
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: {
      "example.test": [
        "forward-email=hello:user@gmail.test,pair:a@gmail.test,pair:b@googlemail.test,split:a@gmail.test,split:c@two.test",
        "forward-email=gone:nobody@gmail.test,half:ok@gmail.test,half:nobody@gmail.test,defer:ok2@gmail.test,defer:slow@two.test",
        "forward-email=tls:x@broken-tls.test,sts:x@sts.test,dns:x@servfail.test,down:x@unreachable.test,dying:x@dying.test,void:x@nullmx.test",
        "forward-email=other:user@gmail.test,stsok:x@stsok.test,stsbad:x@stsbad.test,stsself:x@stsself.test,ststesting:x@ststesting.test",
      ].join("\n"),
    },
    env: {
      MAILFERRY_OUTBOUND_PORT: String(gmail.port),
      MAILFERRY_OUTBOUND_CA_FILE: join(dir, "ca.pem"),
      MAILFERRY_OUTBOUND_MTA_STS_PORT: String(stsServer.port),
      MAILFERRY_OUTBOUND_CONNECT_TIMEOUT: "2s",
    },
  });
}, 30_000);

afterAll(async () => {
  await mf.stop();
  await dns.close();
  stsServer.stop(true);
  await Promise.all([gmail, two, brokenTls, strict, dying, senders, verified, selfSigned].map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
/** A distinct, complete message; `id` makes retries of the same message identical. */
function message(to: string, id = `m${++counter}`, body = "Hello there.\r\n.leading dot stays\r\nBye\r\n") {
  return `From: Alice <alice@sender.test>\r\nTo: ${to}\r\nSubject: test ${id}\r\nMessage-ID: <${id}@sender.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\n${body}`;
}

async function send(to: string | string[], raw: string, from = "alice@sender.test") {
  return sendMail(mf.smtpPort, { from, to, raw }).then(
    (info) => info.response as string,
    (err) => `${err.responseCode} ${String(err.response).replace(/^\d{3} /, "")}`,
  );
}

/** The delivery event of message `id` to a target (the recorder writes on the next turn of the event loop). */
async function deliveryEvent(target: string, id: string): Promise<Event> {
  for (const until = Date.now() + 5000; Date.now() < until; await Bun.sleep(50)) {
    const found = (await listEvents(mf.appliance.store.db, { stage: "delivery", recipient: target, limit: 20 })).find((e) => e.subject === `test ${id}`);
    if (found) return found;
  }
  throw new Error(`no delivery event of ${id} to ${target}`);
}

/** The story of an event's message, as `mailferry log show` prints it. */
async function storyOf(event: Event): Promise<string> {
  return storyText((await storyOfEvent(mf.appliance.store.db, event.id))!.steps);
}

const received = (sink: Sink, id: string) => sink.messages.filter((m) => m.raw.toString().includes(`Message-ID: <${id}@sender.test>`));

describe("forwarding", () => {
  test("the destination gets the SRS envelope sender, the added headers and the unchanged message; the client gets 250", async () => {
    const raw = message("hello@example.test", "basic");
    expect(await send("hello@example.test", raw)).toBe("250 2.0.0 Message forwarded");
    const [copy] = received(gmail, "basic");
    expect(copy!.rcptTo).toEqual(["user@gmail.test"]);
    expect(copy!.mailFrom).toMatch(new RegExp(`^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=sender\\.test=alice@${TEST_HOSTNAME.replaceAll(".", "\\.")}$`));
    const text = copy!.raw.toString();
    // Our headers are prepended; the original follows byte for byte.
    expect(text.endsWith(raw)).toBe(true);
    const added = text.slice(0, text.length - raw.length);
    expect(added).toMatch(/\r\nReceived: from client\.test \(client\.loopback\.test \[127\.0\.0\.1\]\)\r\n\tby mx\.mailferry\.test \(mailferry\) with ESMTPS? id \S+\r\n/);
    expect(added).toContain("\tfor <hello@example.test>; ");
    expect(added).toContain("X-Original-To: hello@example.test\r\n");
    expect(added).toContain("X-Mailferry-Sender: rfc822; alice@sender.test, client.loopback.test, 127.0.0.1\r\n");
  });

  test("the null sender stays null", async () => {
    await send("hello@example.test", message("hello@example.test", "null-sender"), "");
    expect(received(gmail, "null-sender")[0]!.mailFrom).toBe("");
  });

  test("two targets on the same MX host use one connection and one transaction", async () => {
    const before = gmail.connections;
    expect(await send("pair@example.test", message("pair@example.test", "pair"))).toStartWith("250");
    // One new connection at most: none when an idle one from an earlier test was reused.
    expect(gmail.connections - before).toBeLessThanOrEqual(1);
    const copies = received(gmail, "pair");
    expect(copies).toHaveLength(1);
    expect(copies[0]!.rcptTo.sort()).toEqual(["a@gmail.test", "b@googlemail.test"]);
  });

  test("targets on two hosts both receive", async () => {
    expect(await send("split@example.test", message("split@example.test", "split"))).toStartWith("250");
    expect(received(gmail, "split")[0]!.rcptTo).toEqual(["a@gmail.test"]);
    expect(received(two, "split")[0]!.rcptTo).toEqual(["c@two.test"]);
  });

  test("two original recipients get separate transactions: neither learns the other's address", async () => {
    expect(await send(["hello@example.test", "split@example.test"], message("hello@example.test", "bcc"))).toStartWith("250");
    const copies = received(gmail, "bcc");
    expect(copies.map((c) => c.rcptTo)).toEqual([["user@gmail.test"], ["a@gmail.test"]]);
    expect(copies[0]!.raw.toString()).toContain("X-Original-To: hello@example.test\r\n");
    expect(copies[0]!.raw.toString()).not.toContain("split@example.test");
  });
});

describe("the DATA answer tells the truth", () => {
  test("the only target refused: the client gets the destination's own 550", async () => {
    expect(await send("gone@example.test", message("gone@example.test", "gone"))).toBe("550 5.1.1 The email account that you tried to reach does not exist");
  });

  test("one accepted, one refused: 250, and one DSN to the sender even when the message is sent twice", async () => {
    const raw = message("half@example.test", "half");
    expect(await send("half@example.test", raw)).toStartWith("250 2.0.0 Message forwarded to 1 of 2 recipients");
    const dsn = await waitFor(() => senders.messages.filter((m) => m.raw.toString().includes("Message-ID: <half@sender.test>")));
    expect(dsn).toBeDefined();
    await send("half@example.test", raw);
    await Bun.sleep(300);
    const dsns = senders.messages.filter((m) => m.raw.toString().includes("Message-ID: <half@sender.test>"));
    expect(dsns).toHaveLength(1);
    const report = dsns[0]!;
    expect(report.mailFrom).toBe("");
    expect(report.rcptTo).toEqual(["alice@sender.test"]);
    const text = report.raw.toString();
    expect(text).toContain("Content-Type: multipart/report; report-type=delivery-status;");
    expect(text).toContain("Final-Recipient: rfc822; nobody@gmail.test");
    expect(text).toContain("Original-Recipient: rfc822; half@example.test");
    expect(text).toContain("Status: 5.1.1");
    expect(text).toContain("Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist");
    expect(text).not.toContain("Hello there.");
    // The accepted target got the message once, not again on the second send.
    expect(received(gmail, "half").filter((m) => m.rcptTo.includes("ok@gmail.test"))).toHaveLength(1);
  });

  test("one target deferred: the client gets 451; its retry reaches only the deferred target", async () => {
    slowDeferrals = 1;
    const raw = message("defer@example.test", "defer");
    expect(await send("defer@example.test", raw)).toBe("451 4.7.1 Greylisted, please try again");
    expect(received(gmail, "defer")).toHaveLength(1);
    expect(received(two, "defer")).toHaveLength(0);
    expect(await send("defer@example.test", raw)).toStartWith("250");
    expect(received(gmail, "defer")).toHaveLength(1);
    expect(received(two, "defer").map((m) => m.rcptTo)).toEqual([["slow@two.test"]]);
  });

  test("identical messages without Message-ID or Date are each delivered; a resent message with its Message-ID is answered 'already delivered'", async () => {
    const bare = "From: Alice <alice@sender.test>\r\nTo: other@example.test\r\nSubject: disk full\r\n\r\nDisk full on host7\r\n";
    for (let i = 0; i < 3; i++) expect(await send("other@example.test", bare)).toBe("250 2.0.0 Message forwarded");
    expect(gmail.messages.filter((m) => m.raw.toString().includes("Disk full on host7"))).toHaveLength(3);
    const raw = message("other@example.test", "resent");
    expect(await send("other@example.test", raw)).toBe("250 2.0.0 Message forwarded");
    expect(await send("other@example.test", raw)).toBe("250 2.0.0 Message already delivered: an identical message was forwarded earlier");
    expect(received(gmail, "resent")).toHaveLength(1);
    const [data] = await listEvents(mf.appliance.store.db, { stage: "data", limit: 1 });
    expect(data!.reason).toBe("already_delivered");
  });

  test("a null MX refuses permanently", async () => {
    expect(await send("void@example.test", message("void@example.test", "void"))).toBe("550 5.1.10 nullmx.test does not accept mail (null MX)");
  });
});

describe("TLS to the destination", () => {
  test("broken STARTTLS: delivered again without TLS", async () => {
    expect(await send("tls@example.test", message("tls@example.test", "tls"))).toStartWith("250");
    const [copy] = received(brokenTls, "tls");
    expect(copy!.secure).toBe(false);
    const [event] = await listEvents(mf.appliance.store.db, { stage: "delivery", limit: 1 });
    expect(JSON.parse(event!.detail!).tls).toBeNull();
  });

  test("broken STARTTLS with an enforcing MTA-STS policy: 421, nothing sent in plain text", async () => {
    const reply = await send("sts@example.test", message("sts@example.test", "sts"));
    expect(reply).toStartWith("421 4.7.5 TLS with mx.sts.test failed");
    expect(reply).toContain("MTA-STS policy of sts.test requires it");
    expect(received(strict, "sts")).toHaveLength(0);
  });

  test("an enforcing MTA-STS policy with a valid certificate: delivered over verified TLS, the policy recorded and told", async () => {
    expect(await send("stsok@example.test", message("stsok@example.test", "stsok"))).toStartWith("250");
    expect(received(verified, "stsok")[0]!.secure).toBe(true);
    const event = await deliveryEvent("x@stsok.test", "stsok");
    expect(JSON.parse(event.detail!).mta_sts).toEqual({ mode: "enforce", mx_matched: true });
    expect(await storyOf(event)).toContain("MTA-STS enforce: the MX host is listed in the policy, TLS verified");
  });

  test("a testing MTA-STS policy that lists another MX host: delivered, and the mismatch recorded", async () => {
    expect(await send("ststesting@example.test", message("ststesting@example.test", "ststesting"))).toStartWith("250");
    expect(received(verified, "ststesting")).toHaveLength(1);
    const event = await deliveryEvent("x@ststesting.test", "ststesting");
    expect(JSON.parse(event.detail!).mta_sts).toEqual({ mode: "testing", mx_matched: false });
    expect(await storyOf(event)).toContain("MTA-STS testing: the MX host is not listed in the policy (sent anyway");
  });

  test("no MTA-STS policy: recorded as none", async () => {
    expect(await send("other@example.test", message("other@example.test", "nosts"))).toStartWith("250");
    const event = await deliveryEvent("user@gmail.test", "nosts");
    expect(JSON.parse(event.detail!).mta_sts).toBeNull();
    expect(await storyOf(event)).toContain("No MTA-STS policy");
  });

  test("an enforcing MTA-STS policy and a certificate that does not verify: 421, nothing sent", async () => {
    expect(await send("stsself@example.test", message("stsself@example.test", "stsself"))).toMatch(/^421 4\.7\.5 TLS with mx\.stsself\.test failed .* requires it$/);
    expect(received(selfSigned, "stsself")).toHaveLength(0);
  });

  test("an enforcing MTA-STS policy that lists none of the MX hosts: 421", async () => {
    expect(await send("stsbad@example.test", message("stsbad@example.test", "stsbad"))).toBe("421 4.7.5 no mail host of stsbad.test matches its MTA-STS policy");
    expect(received(verified, "stsbad")).toHaveLength(0);
    const event = await deliveryEvent("x@stsbad.test", "stsbad");
    expect(JSON.parse(event.detail!).mta_sts).toEqual({ mode: "enforce", mx_matched: false });
    expect(await storyOf(event)).toContain("MTA-STS enforce: no MX host is listed in the policy, nothing sent");
  });
});

describe("failures we cannot get an answer for are 421", () => {
  test("DNS SERVFAIL", async () => {
    expect(await send("dns@example.test", message("dns@example.test", "dns"))).toBe("421 4.4.3 DNS lookup of MX for servfail.test failed (ESERVFAIL), try again later");
  });

  test("unreachable MX", async () => {
    expect(await send("down@example.test", message("down@example.test", "down"))).toMatch(/^421 4\.4\.1 mx\.unreachable\.test \[127\.0\.0\.8\]: /);
  });

  test("the destination dies in the middle of DATA: 421, and the client still holds the message", async () => {
    const reply = await send("dying@example.test", message("dying@example.test", "dying", "x".repeat(50_000) + "\r\n"));
    expect(reply).toMatch(/^421 4\.4\.2 /);
    expect(dying.messages).toHaveLength(0);
  });
});

describe("SRS bounces", () => {
  test("a bounce to a valid SRS address reaches the original sender; an invalid one is refused", async () => {
    await send("other@example.test", message("other@example.test", "to-bounce"));
    const srsAddress = received(gmail, "to-bounce")[0]!.mailFrom;
    const bounce = `From: MAILER-DAEMON@gmail.test\r\nTo: ${srsAddress}\r\nSubject: Undelivered\r\nMessage-ID: <bounce-1@gmail.test>\r\n\r\nIt bounced.\r\n`;
    expect(await send(srsAddress, bounce, "")).toStartWith("250");
    const back = await waitFor(() => senders.messages.find((m) => m.raw.toString().includes("<bounce-1@gmail.test>")));
    expect(back!.rcptTo).toEqual(["alice@sender.test"]);
    expect(back!.mailFrom).toBe("");

    const { talk } = await SmtpTalk.connect(mf.smtpPort);
    await talk.send("EHLO gmail.test");
    await talk.send("MAIL FROM:<>");
    const forged = await talk.send(`RCPT TO:<${srsAddress.replace(/^SRS0=..../, "SRS0=AAAA")}>`);
    expect(`${forged.code} ${forged.text}`).toBe("550 5.1.1 Invalid or expired SRS address");
    talk.close();
  });
});
