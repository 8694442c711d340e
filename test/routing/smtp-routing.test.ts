// RCPT TO answers over real SMTP for every kind of rule, and the per-message limits.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { SmtpTalk } from "../support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;

beforeAll(async () => {
  dns = await startDnsServer({});
  mf = await startMailferry({
    dns,
    domains: ["example.test", "nocatch.test"],
    aliases: {
      "example.test": [
        "forward-email=hello:a@x.test,/^(linus|torvalds)$/:kernel@x.test",
        "forward-email=!quiet,!!later,!!!gone",
        "forward-email=catch@x.test",
      ].join("\n"),
      "nocatch.test": "forward-email=only:a@x.test",
    },
  });
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
});

async function rcpt(address: string) {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  await talk.send("EHLO client.test");
  await talk.send("MAIL FROM:<sender@elsewhere.test>");
  const reply = await talk.send(`RCPT TO:<${address}>`);
  talk.close();
  return `${reply.code} ${reply.text}`;
}

describe("RCPT TO answers", () => {
  const cases: [string, string, string][] = [
    ["exact", "hello@example.test", "250 Accepted"],
    ["catch-all", "anything@example.test", "250 Accepted"],
    ["regex", "Torvalds@example.test", "250 Accepted"],
    ["plus", "hello+news@example.test", "250 Accepted"],
    ["disabled, silent", "quiet@example.test", "250 Accepted"],
    ["disabled, soft", "later@example.test", "421 4.2.1 later@example.test is temporarily disabled, try again later"],
    ["disabled, hard", "gone@example.test", "550 5.2.1 gone@example.test is disabled"],
    ["unknown alias, no catch-all", "nobody@nocatch.test", "550 5.1.1 nobody@nocatch.test: no such recipient here"],
    ["unmanaged domain", "victim@gmail.test", "550 5.7.1 Relaying denied: gmail.test is not a domain served here"],
  ];
  for (const [kind, address, expected] of cases) {
    test(`${kind}: ${address}`, async () => expect(await rcpt(address)).toBe(expected));
  }

  test("RCPT TO:<postmaster> without a domain (RFC 5321 §4.5.1) is accepted for the server's postmaster", async () => {
    expect(await rcpt("postmaster")).toBe("250 Accepted");
    expect(await rcpt("PostMaster")).toBe("250 Accepted");
  });

  test("the alias that decided is in the mail log", async () => {
    await rcpt("gone@example.test");
    const event = await mf.appliance.store.db.selectFrom("events").selectAll().where("stage", "=", "rcpt").where("code", "=", 550).orderBy("id", "desc").executeTakeFirstOrThrow();
    expect(JSON.parse(event.recipients!)).toEqual(["gone@example.test"]);
    expect(event.text).toBe("gone@example.test is disabled");
  });
});

describe("per message", () => {
  test("a message only for silently disabled aliases is accepted with 250 and discarded", async () => {
    const { talk } = await SmtpTalk.connect(mf.smtpPort);
    await talk.send("EHLO client.test");
    await talk.send("MAIL FROM:<sender@elsewhere.test>");
    expect((await talk.send("RCPT TO:<quiet@example.test>")).code).toBe(250);
    expect((await talk.send("DATA")).code).toBe(354);
    const r = await talk.send("From: sender@elsewhere.test\r\nSubject: into the void\r\n\r\nbye\r\n.");
    expect(`${r.code} ${r.text}`).toBe("250 2.0.0 Message accepted");
    talk.close();
  });

  test("more than 50 recipients: the 51st gets 452 4.5.3, the first 50 stay accepted", async () => {
    const { talk } = await SmtpTalk.connect(mf.smtpPort);
    await talk.send("EHLO client.test");
    await talk.send("MAIL FROM:<sender@elsewhere.test>");
    const codes: number[] = [];
    for (let i = 1; i <= 51; i++) codes.push((await talk.send(`RCPT TO:<user${i}@example.test>`)).code);
    expect(codes.slice(0, 50).every((c) => c === 250)).toBe(true);
    const last = await talk.send("RCPT TO:<user52@example.test>");
    expect(codes[50]).toBe(452);
    expect(last.text).toBe("4.5.3 Too many recipients (at most 50 per message)");
    talk.close();
  });

  test("a change made with the CLI's database connection applies to the next RCPT", async () => {
    const { Database } = await import("bun:sqlite");
    const { join } = await import("node:path");
    expect(await rcpt("newcomer@nocatch.test")).toStartWith("550");
    const side = new Database(join(mf.dataDir, "mailferry.db"));
    const domainId = (side.query("SELECT id FROM domains WHERE name = 'nocatch.test'").get() as { id: number }).id;
    side.run("INSERT INTO aliases (domain_id, matcher, pattern, recipients, created_at, updated_at) VALUES (?, 'exact', 'newcomer', '[\"n@x.test\"]', 0, 0)", [domainId]);
    side.close();
    expect(await rcpt("newcomer@nocatch.test")).toBe("250 Accepted");
  });
});
