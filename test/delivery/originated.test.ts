// Every message mailferry writes itself leaves DKIM-signed: a DSN and a
// verification mail (server notices) and a vacation reply, each arriving at a
// sink MX over SMTP, verified by dkimpy against the records that
// `mailferry domain dns` prints, served by the test DNS server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { DnsRecord } from "../../src/auth/records.ts";
import { fromDomain, selfAndParents } from "../../src/delivery/originated.ts";
import { setVacation } from "../../src/store/vacations.ts";
import { createToken } from "../../src/store/tokens.ts";
import { dkimpyVerify, hasDkimpy } from "../support/dkim-verify.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSinks } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";
import { CLI, run } from "../support/smoke.ts";

if (!hasDkimpy) console.warn("\n*** python3-dkim is NOT installed: mailferry's own mail is not verified independently. Install it: apt-get install python3-dkim ***\n");

let dns: DnsServer;
let dest: Sink, senders: Sink;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  [dest, senders] = (await startSinks([
    { host: "127.0.0.2", onRcpt: (rcpt) => (rcpt.startsWith("nobody@") ? { code: 550, text: "5.1.1 No such user here" } : undefined) },
    { host: "127.0.0.9" },
  ])) as [Sink, Sink];
  const mx = (domain: string, ip: string) => ({ [domain]: { MX: [{ priority: 10, exchange: `mx.${domain}` }] }, [`mx.${domain}`]: { A: [ip] } });
  dns = await startDnsServer({ ...mx("dest.test", "127.0.0.2"), ...mx("outside.test", "127.0.0.2"), ...mx("sender.test", "127.0.0.9") });
});
afterAll(async () => {
  await dns.close();
  await Promise.all([dest.close(), senders.close()]);
});

/** `mailferry domain dns <domain> --json` against a running server's data dir, as its admin would run it. */
async function printedRecords(mf: TestMailferry, domain: string): Promise<DnsRecord[]> {
  const out = await run([...CLI, "domain", "dns", domain, "--json"], { cwd: mf.dataDir, env: { MAILFERRY_DATA_DIR: mf.dataDir, MAILFERRY_HOSTNAME: mf.appliance.config.hostname } });
  expect(out.exitCode).toBe(0);
  return JSON.parse(out.stdout) as DnsRecord[];
}

/** Publishes the TXT records in the test DNS, as the domain owner would. */
function publish(records: DnsRecord[]): void {
  for (const r of records.filter((r) => r.type === "TXT")) dns.zones[r.name.replace(/\.$/, "")] = { TXT: [r.value] };
}

const signatureDomain = (raw: Buffer) => /^DKIM-Signature:[^]*?\bd=([^;\s]+)/.exec(raw.toString())?.[1];

describe("the host name is under no managed domain: server notices are signed with the server key", () => {
  let mf: TestMailferry;
  let records: DnsRecord[];

  beforeAll(async () => {
    mf = await startMailferry({
      dns,
      domains: ["example.test"],
      aliases: { "example.test": "forward-email=half:nobody@dest.test,half:ok@dest.test,away:me@dest.test" },
      env: { MAILFERRY_OUTBOUND_PORT: String(dest.port) },
    });
    await setVacation(mf.appliance.store.db, "example.test", "away", { subject: "Out of office", message: "Back on Monday.", start: today, end: today });
    records = await printedRecords(mf, "example.test");
    publish(records);
  });
  afterAll(() => mf.stop());

  test("`domain dns` lists the server key's record under the host name, once", () => {
    const serverKeys = records.filter((r) => r.name === `mailferry._domainkey.${TEST_HOSTNAME}.`);
    expect(serverKeys).toHaveLength(1);
    expect(serverKeys[0]).toMatchObject({ type: "TXT", level: "required", purpose: "DKIM key of this server's host name: signs its bounces and verification mails" });
    expect(serverKeys[0]!.value).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
  });

  test("a DSN (one target refused 550 next to one that accepted) is signed by the host name and verifies", async () => {
    const raw = "From: alice@sender.test\r\nTo: half@example.test\r\nSubject: Two targets\r\nMessage-ID: <dsn1@sender.test>\r\n\r\nHello.\r\n";
    const info = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "half@example.test", raw });
    expect(String(info.response)).toStartWith("250 2.0.0 Message forwarded to 1 of 2 recipients");
    await mf.appliance.outbox.runDue();
    const dsn = senders.messages.find((m) => m.raw.toString().includes("Message-ID: <dsn1@sender.test>"))!;
    expect(dsn.mailFrom).toBe("");
    expect(dsn.raw.toString()).toContain(`From: Mail Delivery System <MAILER-DAEMON@${TEST_HOSTNAME}>`);
    expect(signatureDomain(dsn.raw)).toBe(TEST_HOSTNAME);
    if (hasDkimpy) expect(await dkimpyVerify(dsn.raw, dns)).toMatchObject({ pass: true, domain: TEST_HOSTNAME, selector: "mailferry" });
    expect(mf.logs.find((l) => l.event === "outbox.sent" && l.to === "alice@sender.test")).toMatchObject({ dkim: TEST_HOSTNAME });
  });

  test("a vacation reply is signed by the alias domain and verifies", async () => {
    const raw = "From: bob@sender.test\r\nTo: away@example.test\r\nSubject: Question\r\nMessage-ID: <vac1@sender.test>\r\n\r\nAre you there?\r\n";
    expect(String((await sendMail(mf.smtpPort, { from: "bob@sender.test", to: "away@example.test", raw })).response)).toStartWith("250");
    await mf.appliance.outbox.runDue();
    const reply = senders.messages.find((m) => m.raw.toString().includes("In-Reply-To: <vac1@sender.test>"))!;
    expect(reply.raw.toString()).toContain("From: away@example.test\r\n");
    expect(reply.raw.toString().match(/^DKIM-Signature:/gm)).toHaveLength(1);
    if (hasDkimpy) expect(await dkimpyVerify(reply.raw, dns)).toMatchObject({ pass: true, domain: "example.test" });
  });

  test("the signature fails once the published key is gone: it really is the printed record that verifies", async () => {
    const raw = "From: carol@sender.test\r\nTo: half@example.test\r\nSubject: Again\r\nMessage-ID: <dsn2@sender.test>\r\n\r\nHello.\r\n";
    expect(String((await sendMail(mf.smtpPort, { from: "carol@sender.test", to: "half@example.test", raw })).response)).toStartWith("250");
    await mf.appliance.outbox.runDue();
    const dsn = senders.messages.find((m) => m.raw.toString().includes("Message-ID: <dsn2@sender.test>"))!;
    const published = dns.zones[`mailferry._domainkey.${TEST_HOSTNAME}`];
    delete dns.zones[`mailferry._domainkey.${TEST_HOSTNAME}`];
    try {
      if (hasDkimpy) expect((await dkimpyVerify(dsn.raw, dns)).pass).toBe(false);
    } finally {
      dns.zones[`mailferry._domainkey.${TEST_HOSTNAME}`] = published!;
    }
    if (hasDkimpy) expect((await dkimpyVerify(dsn.raw, dns)).pass).toBe(true);
  });

  test("mail whose From no key covers still goes out, unsigned, and the log says so", async () => {
    await mf.appliance.outbox.enqueue({ from: "", to: ["dora@sender.test"], raw: Buffer.from("From: someone@elsewhere.test\r\nTo: dora@sender.test\r\nSubject: Stray\r\n\r\nHi.\r\n") });
    await mf.appliance.outbox.runDue();
    const stray = senders.messages.find((m) => m.rcptTo.includes("dora@sender.test"))!;
    expect(stray.raw.toString()).not.toContain("DKIM-Signature:");
    expect(mf.logs.some((l) => l.event === "outbox.unsigned" && l.reason === "no DKIM key covers the From domain")).toBe(true);
  });
});

describe("the host name is under a managed domain: its key signs the server notices", () => {
  let mf: TestMailferry;

  beforeAll(async () => {
    mf = await startMailferry({
      dns,
      domains: ["notice.test"],
      env: { MAILFERRY_HOSTNAME: "mx.notice.test", MAILFERRY_VERIFY_DESTINATIONS: "all", MAILFERRY_OUTBOUND_PORT: String(dest.port) },
    });
  });
  afterAll(() => mf.stop());

  test("no server key record is needed", async () => {
    const records = await printedRecords(mf, "notice.test");
    expect(records.filter((r) => r.name.includes("._domainkey.")).map((r) => r.name)).toEqual(["mailferry._domainkey.notice.test."]);
    publish(records);
  });

  test("a verification mail (an API token's alias to an outside address) is signed by notice.test and verifies", async () => {
    const { token } = await createToken(mf.appliance.store.db, "notices", "write");
    const res = await fetch(`${mf.httpUrl}api/v1/aliases`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ domain: "notice.test", name: "hello", recipients: ["me@outside.test"] }),
    });
    expect(res.status).toBe(201);
    await mf.appliance.outbox.runDue();
    const mail = dest.messages.find((m) => m.rcptTo.includes("me@outside.test"))!;
    expect(mail.raw.toString()).toContain("Subject: Confirm forwarding to me@outside.test");
    expect(mail.raw.toString()).toContain("noreply@mx.notice.test");
    expect(signatureDomain(mail.raw)).toBe("notice.test");
    if (hasDkimpy) expect(await dkimpyVerify(mail.raw, dns)).toMatchObject({ pass: true, domain: "notice.test", selector: "mailferry" });
  });
});

describe("which domain signs", () => {
  test("the From domain, then each parent with two labels or more", () => {
    expect(selfAndParents("mx.mail.Example.net.")).toEqual(["mx.mail.example.net", "mail.example.net", "example.net"]);
    expect(selfAndParents("vm")).toEqual([]);
  });

  test("the From address is found in a display-name form, folded, and is null without one", () => {
    expect(fromDomain(Buffer.from('From: "Mail forwarding at x" <noreply@MX.Example.test>\r\nTo: a@b.test\r\n\r\nbody'))).toBe("mx.example.test");
    expect(fromDomain(Buffer.from("Subject: x\r\nFrom:\r\n  away@team.example.test\r\n\r\n"))).toBe("team.example.test");
    expect(fromDomain(Buffer.from("Subject: none\r\n\r\nFrom: body@example.test\r\n"))).toBeNull();
  });
});
