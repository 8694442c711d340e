// GET /metrics: who may scrape it, that an independent parser (Debian's
// python3-prometheus-client) reads it, and that its counters move when mail
// flows through the real listener to a sink MX and a webhook endpoint.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../src/config/index.ts";
import { eventCounts } from "../src/metrics/index.ts";
import { createRegistry } from "../src/metrics/registry.ts";
import { addDeny } from "../src/store/senders.ts";
import { addAllow } from "../src/store/allowlist.ts";
import { VERSION } from "../src/version.ts";
import { metricsAccess } from "../src/web/metrics.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry, type TestMailferry } from "./support/mailferry.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { sendMail, SmtpTalk } from "./support/smtp-client.ts";

const PYTHON = "/usr/bin/python3";
const hasParser = Bun.spawnSync([PYTHON, "-c", "import prometheus_client.parser"]).exitCode === 0;

interface Family {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** The exposition text as prometheus_client's own parser reads it. */
async function parse(text: string): Promise<Family[]> {
  const script = [
    "import json, sys",
    "from prometheus_client.parser import text_string_to_metric_families",
    "families = text_string_to_metric_families(sys.stdin.read())",
    'print(json.dumps([{"name": f.name, "type": f.type, "help": f.documentation, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]} for f in families]))',
  ].join("\n");
  const proc = Bun.spawn([PYTHON, "-c", script], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`prometheus_client could not parse /metrics:\n${err}`);
  return JSON.parse(out);
}

/** The sum of the samples called `name` whose labels include `labels` (0 when there are none). */
function value(families: Family[], name: string, labels: Record<string, string> = {}): number {
  return families
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe("who may scrape (the decision)", () => {
  const TOKEN = "0123456789abcdef-metrics";
  test("without a token: loopback only", () => {
    for (const ip of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) expect(metricsAccess(ip, undefined, null)).toBe("allowed");
    for (const ip of ["192.0.2.1", "10.0.0.1", "::ffff:192.0.2.1", "2001:db8::1", "unknown"]) expect(metricsAccess(ip, undefined, null)).toBe("forbidden");
  });

  test("with a token: every request must bear it, from loopback too", () => {
    expect(metricsAccess("127.0.0.1", undefined, TOKEN)).toBe("unauthorized");
    expect(metricsAccess("127.0.0.1", `Bearer ${TOKEN}x`, TOKEN)).toBe("unauthorized");
    expect(metricsAccess("127.0.0.1", `Basic ${TOKEN}`, TOKEN)).toBe("unauthorized");
    expect(metricsAccess("192.0.2.1", undefined, TOKEN)).toBe("unauthorized");
    expect(metricsAccess("192.0.2.1", `Bearer ${TOKEN}`, TOKEN)).toBe("allowed");
    expect(metricsAccess("127.0.0.1", `bearer ${TOKEN}`, TOKEN)).toBe("allowed");
  });

  test("a token shorter than 16 characters is a configuration error", () => {
    // A data dir without config.toml: only the environment counts.
    const dir = mkdtempSync(join(tmpdir(), "mailferry-metrics-"));
    try {
      const load = (env: Record<string, string>) => loadConfig({ env: { MAILFERRY_DATA_DIR: dir, ...env } });
      expect(() => load({ MAILFERRY_METRICS_TOKEN: "short" })).toThrow(ConfigError);
      expect(load({ MAILFERRY_METRICS_TOKEN: TOKEN }).metrics.token).toBe(TOKEN);
      expect(load({}).metrics.token).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what a mail-log event counts toward", () => {
  test("a webhook delivery: its failed attempts and the request that succeeded; the duration", () => {
    const detail = JSON.stringify({ webhook: true, attempts: [{ status: 503 }, { status: null, error: "ECONNRESET" }], duration_ms: 1500 });
    expect(eventCounts({ stage: "delivery", code: 250, detail })).toEqual({ reply: null, connection: null, deliveries: ["delivered"], deliverySeconds: 1.5, webhookRequests: ["5xx", "error", "2xx"] });
    expect(eventCounts({ stage: "delivery", code: 421, detail: JSON.stringify({ mx: "mx.x.test", duration_ms: 20 }) }).deliveries).toEqual(["deferred"]);
    expect(eventCounts({ stage: "delivery", code: 550, detail: null }).deliveries).toEqual(["failed"]);
  });

  test("SMTP replies, connections, and recipients of a drop alias once DATA is accepted", () => {
    expect(eventCounts({ stage: "connect", code: 421, detail: "{}" })).toMatchObject({ reply: { stage: "connect", code: 421 }, connection: "refused" });
    const dropped = JSON.stringify({ dropped: ["a@x.test", "b@x.test"] });
    expect(eventCounts({ stage: "data", code: 250, detail: dropped }).deliveries).toEqual(["dropped", "dropped"]);
    // Deferred: the sender retries, and the retry is what counts.
    expect(eventCounts({ stage: "data", code: 451, detail: dropped }).deliveries).toEqual([]);
  });
});

describe.skipIf(!hasParser)("the exposition format, read by prometheus_client", () => {
  test("HELP, TYPE, escaped label values and histogram buckets come back as written", async () => {
    const registry = createRegistry();
    registry.counter("t_events_total", 'Help with a \\ backslash\nand a newline', ["what"]).inc({ what: 'quote " backslash \\ newline \n end' }, 3);
    const histogram = registry.histogram("t_seconds", "A histogram", [0.5, 2]);
    for (const v of [0.1, 1, 5]) histogram.observe(v);
    registry.collected("t_open", "A gauge", "gauge", () => 7);
    const families = await parse(registry.render());
    expect(families.map((f) => `${f.name} ${f.type}`)).toEqual(["t_events counter", "t_seconds histogram", "t_open gauge"]);
    expect(families[0]!.help).toBe("Help with a \\ backslash\nand a newline");
    expect(families[0]!.samples).toEqual([{ name: "t_events_total", labels: { what: 'quote " backslash \\ newline \n end' }, value: 3 }]);
    expect(families[1]!.samples.map((s) => `${s.name}${s.labels.le ? ` le=${s.labels.le}` : ""} ${s.value}`)).toEqual([
      "t_seconds_bucket le=0.5 1",
      "t_seconds_bucket le=2 2",
      "t_seconds_bucket le=+Inf 3",
      "t_seconds_sum 6.1",
      "t_seconds_count 3",
    ]);
  });
});

describe.skipIf(!hasParser)("GET /metrics of a running mailferry", () => {
  let dns: DnsServer;
  let sink: Sink;
  let hooks: ReturnType<typeof Bun.serve>;
  let mf: TestMailferry;
  const scrape = async () => parse(await (await fetch(`${mf.httpUrl}metrics`)).text());

  beforeAll(async () => {
    sink = await startSink({ host: "127.0.0.2" });
    hooks = Bun.serve({ hostname: "127.0.0.3", port: 0, fetch: () => new Response("ok") });
    dns = await startDnsServer({
      "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.2"] },
      "hooks.test": { A: ["127.0.0.3"] },
    });
    mf = await startMailferry({
      dns,
      domains: ["example.test"],
      aliases: { "example.test": `forward-email=hello:user@dest.test,hook:http://hooks.test:${hooks.port}/in,!quiet` },
      env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true", MAILFERRY_GREYLIST_DELAY: "300" },
    });
    // 127.0.0.1 is allowlisted (no greylisting); 127.0.0.30 is greylisted; 127.0.0.31 is denied.
    await addAllow(mf.appliance.store.db, "127.0.0.1");
    await addDeny(mf.appliance.store.db, "127.0.0.31", { reason: "test" });
  });
  afterAll(async () => {
    await mf.stop();
    await dns.close();
    await sink.close();
    hooks.stop(true);
  });

  test("from loopback: the text format 0.0.4, every family mailferry_ with HELP and TYPE", async () => {
    const res = await fetch(`${mf.httpUrl}metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = await parse(await res.text());
    for (const f of families) {
      expect(f.name).toStartWith("mailferry_");
      expect(f.help.length).toBeGreaterThan(10);
    }
    expect(Object.fromEntries(families.map((f) => [f.name, f.type]))).toEqual({
      mailferry_info: "gauge",
      mailferry_uptime_seconds: "gauge",
      mailferry_smtp_connections: "counter",
      mailferry_smtp_sessions_open: "gauge",
      mailferry_smtp_replies: "counter",
      mailferry_deliveries: "counter",
      mailferry_delivery_duration_seconds: "histogram",
      mailferry_webhook_requests: "counter",
      mailferry_greylist_verdicts: "counter",
      mailferry_deny_hits: "counter",
      mailferry_dns_queries: "counter",
    });
    expect(value(families, "mailferry_info", { version: VERSION })).toBe(1);
    expect(value(families, "mailferry_uptime_seconds")).toBeGreaterThanOrEqual(0);
  });

  test("mail that flows moves connections, 250 replies, deliveries, the latency histogram, webhook requests and DNS queries", async () => {
    const before = await scrape();
    const raw = "From: Alice <alice@sender.test>\r\nTo: hello@example.test\r\nSubject: metrics\r\nMessage-ID: <metrics-1@sender.test>\r\n\r\nHello.\r\n";
    await sendMail(mf.smtpPort, { from: "alice@sender.test", to: ["hello@example.test", "hook@example.test", "quiet@example.test"], raw });
    await sink.waitForMessages(1);
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(moved("mailferry_smtp_connections_total", { result: "accepted" })).toBe(1);
    expect(moved("mailferry_smtp_replies_total", { stage: "rcpt", class: "2xx", code: "250" })).toBe(3);
    expect(moved("mailferry_smtp_replies_total", { stage: "data", code: "250" })).toBe(1);
    expect(moved("mailferry_deliveries_total", { result: "delivered" })).toBe(2);
    expect(moved("mailferry_deliveries_total", { result: "dropped" })).toBe(1);
    expect(moved("mailferry_delivery_duration_seconds_count")).toBe(2);
    expect(moved("mailferry_delivery_duration_seconds_bucket", { le: "+Inf" })).toBe(2);
    expect(moved("mailferry_webhook_requests_total", { result: "2xx" })).toBe(1);
    expect(moved("mailferry_dns_queries_total")).toBeGreaterThan(0);
  });

  test("a refused recipient, a greylisted sender and a denied one move their counters", async () => {
    const before = await scrape();
    await expect(sendMail(mf.smtpPort, { from: "alice@sender.test", to: "nobody@example.test" })).rejects.toMatchObject({ responseCode: 550 });
    await expect(sendMail(mf.smtpPort, { from: "bob@sender.test", to: "hello@example.test", localAddress: "127.0.0.30" })).rejects.toMatchObject({ responseCode: 450 });
    const { talk, greeting } = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.31");
    expect(greeting.code).toBe(421);
    talk.close();
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(moved("mailferry_smtp_replies_total", { stage: "rcpt", class: "5xx", code: "550" })).toBe(1);
    expect(moved("mailferry_smtp_replies_total", { stage: "rcpt", code: "450" })).toBe(1);
    expect(moved("mailferry_greylist_verdicts_total", { verdict: "deferred" })).toBe(1);
    expect(moved("mailferry_smtp_connections_total", { result: "refused" })).toBe(1);
    expect(moved("mailferry_smtp_replies_total", { stage: "connect", code: "421" })).toBe(1);
    expect(moved("mailferry_deny_hits_total", { stage: "connect" })).toBe(1);
  });

  test("open SMTP sessions are a gauge", async () => {
    const { talk } = await SmtpTalk.connect(mf.smtpPort);
    try {
      expect(value(await scrape(), "mailferry_smtp_sessions_open")).toBeGreaterThanOrEqual(1);
    } finally {
      talk.close();
    }
  });
});

describe("GET /metrics with [metrics] token set", () => {
  const TOKEN = "scrape-0123456789abcdef";
  let dns: DnsServer;
  let mf: TestMailferry;
  beforeAll(async () => {
    dns = await startDnsServer({});
    mf = await startMailferry({ dns, env: { MAILFERRY_METRICS_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await mf.stop();
    await dns.close();
  });

  test("401 without the token or with a wrong one, even from loopback; 200 with it; no admin session needed", async () => {
    const get = (headers: Record<string, string> = {}) => fetch(`${mf.httpUrl}metrics`, { headers, redirect: "manual" });
    const missing = await get();
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toStartWith("Bearer");
    expect((await get({ authorization: `Bearer ${TOKEN.slice(0, -1)}` })).status).toBe(401);
    const ok = await get({ authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain(`mailferry_info{version="${VERSION}"} 1`);
  });
});
