// Webhook recipients end to end: a real endpoint (Bun.serve) on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { webhookKey } from "../../src/store/domains.ts";
import { addAlias } from "../../src/store/aliases.ts";
import { UserError } from "../../src/errors.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { sendMail } from "../support/smtp-client.ts";

interface Hit {
  path: string;
  query: string;
  body: string;
  signature: string | null;
}

let dns: DnsServer;
let mf: TestMailferry;
let endpoint: ReturnType<typeof Bun.serve>;
const hits: Hit[] = [];
const failures = new Map<string, number>();

beforeAll(async () => {
  endpoint = Bun.serve({
    hostname: "127.0.0.3",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      hits.push({ path: url.pathname, query: url.search, body: await req.text(), signature: req.headers.get("x-webhook-signature") });
      if (url.pathname === "/ratelimited") return new Response("slow down", { status: 429 });
      if (url.pathname === "/flaky") {
        const left = failures.get("/flaky") ?? 0;
        if (left > 0) {
          failures.set("/flaky", left - 1);
          return new Response("oops", { status: 500 });
        }
      }
      if (url.pathname === "/missing") return new Response("no such hook", { status: 404 });
      if (url.pathname === "/slow") await Bun.sleep(3000);
      return new Response("ok");
    },
  });
  dns = await startDnsServer({ "hooks.test": { A: ["127.0.0.3"] } });
  const base = `http://hooks.test:${endpoint.port}`;
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: {
      "example.test": [
        `forward-email=one:${base}/all,two:${base}/all,three:${base}/all`,
        `forward-email=slim:${base}/slim?attachments=false&raw=false&keep=1`,
        `forward-email=ratelimited:${base}/ratelimited,flaky:${base}/flaky,missing:${base}/missing,slow:${base}/slow`,
      ].join("\n"),
    },
    env: { MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true", MAILFERRY_WEBHOOK_TIMEOUT: "500ms" },
  });
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  endpoint.stop(true);
});

const message = (to: string, subject: string) =>
  [
    "From: Alice <alice@sender.test>",
    `To: ${to}`,
    `Subject: ${subject}`,
    "Message-ID: <" + subject.replaceAll(" ", "-") + "@sender.test>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain",
    "",
    "Hello hooks",
    "--b1",
    'Content-Type: text/plain; name="text1.txt"',
    'Content-Disposition: attachment; filename="text1.txt"',
    "",
    "hello world!",
    "--b1--",
    "",
  ].join("\r\n");

const send = (to: string[], subject: string) =>
  sendMail(mf.smtpPort, { from: "alice@sender.test", to, raw: message(to.join(", "), subject) }).then(
    (i) => String(i.response),
    (e) => `${e.responseCode} ${String(e.response).replace(/^\d{3} /, "")}`,
  );
const hitsFor = (path: string, subject: string) => hits.filter((h) => h.path === path && h.body.includes(subject));

describe("webhook delivery", () => {
  test("one POST for three aliases on the same URL, listing the three recipients, signed with the domain's key", async () => {
    expect(await send(["one@example.test", "two@example.test", "three@example.test"], "batch test")).toStartWith("250");
    const [hit, ...more] = hitsFor("/all", "batch test");
    expect(more).toHaveLength(0);
    const body = JSON.parse(hit!.body);
    expect(body.recipients).toEqual(["one@example.test", "two@example.test", "three@example.test"]);
    const key = await webhookKey(mf.appliance.store.db, "example.test");
    expect(hit!.signature).toBe(createHmac("sha256", key).update(hit!.body).digest("hex"));
    expect(body.raw).toContain("Subject: batch test");
    expect(body.subject).toBe("batch test");
    expect(body.text).toContain("Hello hooks");
    expect(body.attachments[0]).toMatchObject({ filename: "text1.txt", content: { type: "Buffer" } });
    expect(Buffer.from(body.attachments[0].content.data).toString()).toBe("hello world!");
    expect(body.headers.subject).toBe("batch test");
    expect(body.headerLines.length).toBeGreaterThan(3);
    expect(body.spf).toMatchObject({ status: { result: expect.any(String) } });
    for (const field of ["dkim", "arc", "dmarc", "bimi"]) expect(body).toHaveProperty(field);
    expect(body.session).toMatchObject({ remoteAddress: "127.0.0.1", hostNameAppearsAs: "client.test", sender: "alice@sender.test", recipient: "one@example.test", mta: "mx.mailferry.test" });
    expect(typeof body.session.arrivalTime).toBe("number");
  });

  test("?attachments=false&raw=false slims the payload and the parameters are not passed on", async () => {
    expect(await send(["slim@example.test"], "slim test")).toStartWith("250");
    const [hit] = hitsFor("/slim", "slim test");
    const body = JSON.parse(hit!.body);
    expect(body).not.toHaveProperty("raw");
    expect(body).not.toHaveProperty("attachments");
    expect(body).toHaveProperty("headers");
    expect(hit!.query).toBe("?keep=1");
  });

  test("429: the SMTP client gets 421", async () => {
    expect(await send(["ratelimited@example.test"], "limited test")).toBe("421 4.4.0 webhook hooks.test:" + endpoint.port + " answered HTTP 429 after 4 attempts; try again later");
  });

  test("500 twice then 200: delivered within one session", async () => {
    failures.set("/flaky", 2);
    expect(await send(["flaky@example.test"], "flaky test")).toStartWith("250");
    expect(hitsFor("/flaky", "flaky test")).toHaveLength(3);
  });

  test("a timeout (shortened for the test): 421", async () => {
    expect(await send(["slow@example.test"], "slow test")).toMatch(/^421 4\.4\.0 webhook hooks\.test:\d+ failed \(timed out after 500 ms\) after 4 attempts/);
  }, 20_000);

  test("404: 550 with the endpoint's status", async () => {
    expect(await send(["missing@example.test"], "missing test")).toBe(`550 5.0.0 webhook hooks.test:${endpoint.port} answered HTTP 404`);
  });

  test("a message whose MIME mailparser cannot parse (2,000 nested parts): 550 5.6.0, not a 421 retried for days", async () => {
    const depth = 2000;
    const lines = ["From: Alice <alice@sender.test>", "To: one@example.test", "Subject: nested test", "Message-ID: <nested@sender.test>", "MIME-Version: 1.0"];
    for (let i = 0; i < depth; i++) lines.push(`Content-Type: multipart/mixed; boundary="b${i}"`, "", `--b${i}`);
    lines.push("Content-Type: text/plain", "", "deep inside");
    for (let i = depth - 1; i >= 0; i--) lines.push(`--b${i}--`);
    const reply = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: ["one@example.test"], raw: lines.join("\r\n") + "\r\n" }).catch((e) => e);
    expect(reply.responseCode).toBe(550);
    expect(reply.response).toContain("5.6.0 The message cannot be parsed for webhook hooks.test");
    expect(hitsFor("/all", "nested test")).toHaveLength(0);
    const event = await mf.appliance.store.db.selectFrom("events").select(["reason"]).where("stage", "=", "data").where("subject", "=", "nested test").executeTakeFirst();
    expect(event?.reason).toBe("unparsable_message");
  });

  test("an inline image referenced by cid: becomes a data: URL in html, as simpleParser makes it", async () => {
    const raw = [
      "From: Alice <alice@sender.test>", "To: one@example.test", "Subject: inline test", "MIME-Version: 1.0", 'Content-Type: multipart/related; boundary="r1"', "",
      "--r1", "Content-Type: text/html", "", '<p><img src="cid:dot@sender.test"></p>',
      "--r1", "Content-Type: image/png", "Content-ID: <dot@sender.test>", "Content-Transfer-Encoding: base64", "", Buffer.from("not really a png").toString("base64"),
      "--r1--", "",
    ].join("\r\n");
    expect(String((await sendMail(mf.smtpPort, { from: "alice@sender.test", to: ["one@example.test"], raw })).response)).toStartWith("250");
    const body = JSON.parse(hitsFor("/all", "inline test")[0]!.body);
    expect(body.html).toContain(`<img src="data:image/png;base64,${Buffer.from("not really a png").toString("base64")}">`);
    expect(Buffer.from(body.attachments[0].content.data).toString()).toBe("not really a png");
  });

  test("failed attempts are in the mail log with an excerpt of the response", async () => {
    const events = await mf.appliance.store.db.selectFrom("events").select("detail").where("stage", "=", "delivery").where("code", "=", 550).execute();
    const detail = events.map((e) => JSON.parse(e.detail!)).find((d) => d.webhook);
    expect(detail.attempts).toEqual([{ status: 404, error: null, excerpt: "no such hook" }]);
  });
});

describe("SSRF guard", () => {
  test("loopback, metadata and IPv6 loopback URLs are refused on save unless private targets are allowed", async () => {
    const refuse = async (url: string) => {
      const err = await addAlias(mf.appliance.store.db, "example.test", { matcher: "exact", pattern: `x${Math.random().toString(36).slice(2, 8)}`, recipients: [url] }).catch((e) => e);
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toContain("loopback, private or link-local");
    };
    await refuse("http://127.0.0.1/");
    await refuse("http://169.254.169.254/latest/meta-data");
    await refuse("http://[::1]/");
    await refuse("http://localhost:8080/");
    const ok = await addAlias(mf.appliance.store.db, "example.test", { matcher: "exact", pattern: "allowed", recipients: ["http://127.0.0.1/"] }, { allowPrivateWebhooks: true });
    expect(ok.recipients).toEqual(["http://127.0.0.1/"]);
  });

  test("and at send time, when a name resolves to a private address", async () => {
    const instance = await startMailferry({ dns, domains: ["example.test"], env: { MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "false" } });
    try {
      // Stored directly: the name passes the save-time check (it is not an IP), DNS makes it private.
      await addAlias(instance.appliance.store.db, "example.test", { matcher: "exact", pattern: "hook", recipients: [`http://hooks.test:${endpoint.port}/all`] });
      const reply = await sendMail(instance.smtpPort, { from: "alice@sender.test", to: "hook@example.test", raw: message("hook@example.test", "ssrf test") }).catch((e) => e);
      expect(reply.responseCode).toBe(550);
      expect(reply.response).toContain("resolves to a private address (127.0.0.3); refused");
      expect(hitsFor("/all", "ssrf test")).toHaveLength(0);
    } finally {
      await instance.stop();
    }
  });
});
