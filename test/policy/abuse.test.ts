// Abuse protection over real SMTP: greylisting, deny/allow lists, rate and
// concurrency limits, the automatic denylist, and state across a restart.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reverseName } from "../../src/dns/resolver.ts";
import { rootDomain, senderKey } from "../../src/policy/identity.ts";
import { dropExpiredWindows } from "../../src/policy/abuse.ts";
import { GTUBE } from "../../src/smtp/content.ts";
import { addDeny, removeDeny } from "../../src/store/senders.ts";
import { addAllow } from "../../src/store/allowlist.ts";
import { openStore } from "../../src/store/db.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail, SmtpTalk } from "../support/smtp-client.ts";

let dns: DnsServer;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: ["127.0.0.2"] },
    // 127.0.0.20 is mail.bigsender.co.uk, forward-confirmed.
    [reverseName("127.0.0.20")]: { PTR: ["mail.bigsender.co.uk"] },
    "mail.bigsender.co.uk": { A: ["127.0.0.20"] },
    // 127.0.0.21 claims a name that does not resolve back to it.
    [reverseName("127.0.0.21")]: { PTR: ["mail.liar.test"] },
    "mail.liar.test": { A: ["192.0.2.1"] },
    // 127.0.0.22 is a verified government host: allowlisted by default.
    [reverseName("127.0.0.22")]: { PTR: ["mx.agency.gov"] },
    "mx.agency.gov": { A: ["127.0.0.22"] },
    // 127.0.0.74 has a slow reverse DNS: clients may hang up while it is looked up.
    [reverseName("127.0.0.74")]: { PTR: ["slow.sender.test"], delayMs: 600 },
  });
});
afterAll(async () => {
  await dns.close();
  await sink.close();
});

/** A fresh instance, or (with `restartOf`) the same data dir started again. */
async function instance(env: Record<string, string> = {}, restartOf?: string) {
  return startMailferry({
    dns,
    ...(restartOf ? { dataDir: restartOf } : { domains: ["example.test"], aliases: { "example.test": "forward-email=hello:user@dest.test" } }),
    env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), ...env },
  });
}

async function rcpt(mf: TestMailferry, from: string, to = "hello@example.test", mailFrom = "someone@sender.test") {
  const { talk, greeting } = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", from);
  if (greeting.code !== 220) {
    talk.close();
    return `${greeting.code} ${greeting.text}`;
  }
  await talk.send("EHLO client.test");
  const mail = await talk.send(`MAIL FROM:<${mailFrom}>`);
  if (mail.code !== 250) {
    talk.close();
    return `${mail.code} ${mail.text}`;
  }
  const r = await talk.send(`RCPT TO:<${to}>`);
  talk.close();
  return `${r.code} ${r.text}`;
}

describe("sender identity", () => {
  test("the key is the root domain of a forward-confirmed name, else the IP (IPv6 by /64)", () => {
    expect(rootDomain("a.b.example.co.uk")).toBe("example.co.uk");
    expect(senderKey("192.0.2.1", "a.b.example.co.uk")).toBe("example.co.uk");
    expect(senderKey("192.0.2.1", null)).toBe("192.0.2.1");
    expect(senderKey("2001:db8:1:2:3::4", null)).toBe("2001:0db8:0001:0002::/64");
  });

  test("over SMTP: a verified PTR gives its root domain, an unconfirmed one the IP", async () => {
    const mf = await instance();
    try {
      await rcpt(mf, "127.0.0.20");
      await rcpt(mf, "127.0.0.21");
      const events = await mf.appliance.store.db.selectFrom("events").select(["remote_ip", "detail"]).where("stage", "=", "connect").execute();
      const keyOf = (ip: string) => JSON.parse(events.find((e) => e.remote_ip === ip)!.detail!);
      expect(keyOf("127.0.0.20")).toMatchObject({ verified_host: "mail.bigsender.co.uk", sender_key: "bigsender.co.uk" });
      expect(keyOf("127.0.0.21")).toMatchObject({ client_host: "mail.liar.test", verified_host: null, sender_key: "127.0.0.21" });
    } finally {
      await mf.stop();
    }
  });
});

describe("greylisting", () => {
  test("first attempt 450 4.7.1; accepted on a retry after the delay; remembered after that", async () => {
    const mf = await instance({ MAILFERRY_GREYLIST_DELAY: "1" });
    try {
      expect(await rcpt(mf, "127.0.0.30")).toMatch(/^450 4\.7\.1 Greylisted: this is the first message from 127\.0\.0\.30 to this domain; please try again in 1 seconds$/);
      expect(await rcpt(mf, "127.0.0.30")).toStartWith("450 4.7.1");
      await Bun.sleep(1100);
      expect(await rcpt(mf, "127.0.0.30")).toBe("250 Accepted");
      expect(await rcpt(mf, "127.0.0.30")).toBe("250 Accepted");
      // Another sender is greylisted on its own.
      expect(await rcpt(mf, "127.0.0.31")).toStartWith("450 4.7.1");
    } finally {
      await mf.stop();
    }
  });

  test("allowlisted senders skip it: admin entries and default suffixes (a verified .gov host)", async () => {
    const mf = await instance({ MAILFERRY_GREYLIST_DELAY: "300" });
    try {
      await addAllow(mf.appliance.store.db, "127.0.0.32");
      expect(await rcpt(mf, "127.0.0.32")).toBe("250 Accepted");
      expect(await rcpt(mf, "127.0.0.22")).toBe("250 Accepted");
      expect(await rcpt(mf, "127.0.0.33")).toStartWith("450");
    } finally {
      await mf.stop();
    }
  });

  test("a restart keeps greylist passes and deny entries", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-restart-"));
    try {
      const first = await startMailferry({ dns, dataDir: dir, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:user@dest.test" }, env: { MAILFERRY_GREYLIST_DELAY: "1" } });
      expect(await rcpt(first, "127.0.0.34")).toStartWith("450");
      await Bun.sleep(1100);
      expect(await rcpt(first, "127.0.0.34")).toBe("250 Accepted");
      await addDeny(first.appliance.store.db, "127.0.0.35", { reason: "spam run" });
      await first.stop();
      const second = await instance({ MAILFERRY_GREYLIST_DELAY: "300" }, dir);
      try {
        expect(await rcpt(second, "127.0.0.34")).toBe("250 Accepted");
        expect(await rcpt(second, "127.0.0.35")).toStartWith("421 4.7.1 127.0.0.35 is on the denylist");
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("denylist", () => {
  test("an entry answers 421 at connect or MAIL FROM; removing it restores delivery", async () => {
    const mf = await instance();
    try {
      const db = mf.appliance.store.db;
      await addDeny(db, "127.0.0.40", { reason: "reported spam" });
      expect(await rcpt(mf, "127.0.0.40")).toBe("421 4.7.1 127.0.0.40 is on the denylist of this server (reported spam); contact its postmaster if this is a mistake");
      await addDeny(db, "spammer.test");
      expect(await rcpt(mf, "127.0.0.41", "hello@example.test", "bulk@mail.spammer.test")).toStartWith("421 4.7.1 spammer.test is on the denylist");
      await addDeny(db, "127.0.0.48/29");
      expect(await rcpt(mf, "127.0.0.49")).toStartWith("421 4.7.1 127.0.0.48/29");
      await removeDeny(db, "127.0.0.40");
      expect(await rcpt(mf, "127.0.0.40")).toBe("250 Accepted");
      const sent = await sendMail(mf.smtpPort, { from: "someone@sender.test", to: "hello@example.test", subject: "after removal", localAddress: "127.0.0.40" });
      expect(sent.response).toStartWith("250");
    } finally {
      await mf.stop();
    }
  });

  test("the lists the listener keeps in memory follow changes from another connection (the CLI) and expiry", async () => {
    const mf = await instance({ MAILFERRY_GREYLIST_DELAY: "3600" });
    const cli = await openStore(mf.appliance.store.path);
    try {
      expect(await rcpt(mf, "127.0.0.42")).toStartWith("450 4.7.1 Greylisted");
      await addDeny(cli.db, "127.0.0.42", { reason: "from the CLI" });
      expect(await rcpt(mf, "127.0.0.42")).toStartWith("421 4.7.1 127.0.0.42 is on the denylist of this server (from the CLI)");
      await removeDeny(cli.db, "127.0.0.42");
      await addAllow(cli.db, "127.0.0.42");
      expect(await rcpt(mf, "127.0.0.42")).toBe("250 Accepted");
      await addDeny(cli.db, "127.0.0.43", { expiresAt: Date.now() + 1500 });
      expect(await rcpt(mf, "127.0.0.43")).toStartWith("421 4.7.1 127.0.0.43 is on the denylist");
      await Bun.sleep(1600);
      expect(await rcpt(mf, "127.0.0.43")).toStartWith("450 4.7.1 Greylisted");
    } finally {
      await cli.close();
      await mf.stop();
    }
  });

  test("five GTUBE messages in a day put the sender on the denylist automatically", async () => {
    const mf = await instance();
    try {
      for (let i = 0; i < 5; i++) {
        const err = await sendMail(mf.smtpPort, { from: "spam@sender.test", to: "hello@example.test", text: GTUBE, localAddress: "127.0.0.50" }).catch((e) => e);
        expect(err.responseCode).toBe(554);
      }
      expect(await rcpt(mf, "127.0.0.50")).toStartWith("421 4.7.1 127.0.0.50 is on the denylist of this server (5 detections (GTUBE) in 24 hours)");
      const [entry] = await mf.appliance.store.db.selectFrom("denylist").selectAll().execute();
      expect(entry).toMatchObject({ source: "auto", kind: "ip" });
      expect(entry!.expires_at! - Date.now()).toBeGreaterThan(29 * 86_400_000);
      expect(await rcpt(mf, "127.0.0.51")).toBe("250 Accepted");
    } finally {
      await mf.stop();
    }
  });
});

describe("rate limits", () => {
  test("the 101st connection in an hour from one sender to one recipient gets 421 4.7.0", async () => {
    const mf = await instance();
    try {
      const answers: string[] = [];
      // In batches of 10: the concurrency limit is not what is tested here.
      for (let batch = 0; batch < 10; batch++) answers.push(...(await Promise.all(Array.from({ length: 10 }, () => rcpt(mf, "127.0.0.60")))));
      expect(answers.every((a) => a === "250 Accepted")).toBe(true);
      expect(await rcpt(mf, "127.0.0.60")).toBe("421 4.7.0 Rate limit: more than 100 connections in an hour from 127.0.0.60 to hello@example.test; try again later");
      expect(await rcpt(mf, "127.0.0.60", "other@example.test")).not.toStartWith("421");
      expect(await rcpt(mf, "127.0.0.61")).toBe("250 Accepted");
    } finally {
      await mf.stop();
    }
  }, 60_000);

  test("both limits are settings: lower ones apply", async () => {
    const mf = await instance({ MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: "3", MAILFERRY_LIMITS_CONCURRENT_CONNECTIONS: "2" });
    try {
      for (let i = 0; i < 3; i++) expect(await rcpt(mf, "127.0.0.62")).toBe("250 Accepted");
      expect(await rcpt(mf, "127.0.0.62")).toBe("421 4.7.0 Rate limit: more than 3 connections in an hour from 127.0.0.62 to hello@example.test; try again later");
      const open = await Promise.all(Array.from({ length: 2 }, () => SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.72")));
      const third = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.72");
      expect(`${third.greeting.code} ${third.greeting.text}`).toBe("421 4.7.0 Too many concurrent connections from 127.0.0.72 (at most 2); try again later");
      for (const o of open) o.talk.close();
      third.talk.close();
    } finally {
      await mf.stop();
    }
  });

  test("connections dropped during a slow reverse-DNS lookup are released: the sender is not locked out", async () => {
    const mf = await instance();
    try {
      const hangUps = Array.from({ length: 12 }, () => {
        const socket = net.connect({ port: mf.smtpPort, host: "127.0.0.1", localAddress: "127.0.0.74" });
        socket.on("error", () => {});
        return new Promise<void>((resolve) => socket.on("connect", () => setTimeout(() => socket.destroy() && resolve(), 250)));
      });
      await Promise.all(hangUps);
      await Bun.sleep(700); // every lookup has answered
      const after = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.74");
      expect(after.greeting.code).toBe(220);
      after.talk.close();
    } finally {
      await mf.stop();
    }
  });

  test("the 11th concurrent connection from one sender gets 421 4.7.0", async () => {
    const mf = await instance();
    try {
      const open = await Promise.all(Array.from({ length: 10 }, () => SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.70")));
      expect(open.every((o) => o.greeting.code === 220)).toBe(true);
      const eleventh = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.70");
      expect(`${eleventh.greeting.code} ${eleventh.greeting.text}`).toBe("421 4.7.0 Too many concurrent connections from 127.0.0.70 (at most 10); try again later");
      const other = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.71");
      expect(other.greeting.code).toBe(220);
      other.talk.close();
      open[0]!.talk.close();
      await Bun.sleep(100);
      const again = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.70");
      expect(again.greeting.code).toBe(220);
      again.talk.close();
      for (const o of open) o.talk.close();
    } finally {
      await mf.stop();
    }
  });
});

test("the in-memory rate counts keep only windows of the last hour", () => {
  const now = 10 * 3_600_000;
  const windows = new Map([
    ["old|a@x.test", { window_start: now - 3_600_000, count: 7 }],
    ["new|a@x.test", { window_start: now - 60_000, count: 1 }],
  ]);
  dropExpiredWindows(windows, now);
  expect([...windows.keys()]).toEqual(["new|a@x.test"]);
});
