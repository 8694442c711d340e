// ACME failing as an alert trigger, against a real CA (pebble on loopback, as
// in test/tls/acme.test.ts): while the host name has no address in DNS,
// pebble's HTTP-01 validation fails and the orders fail in a row; at the
// threshold the alert reaches the webhook once; once the name resolves the
// next order succeeds and the alert is resolved, once. acme.email is left empty:
// later orders find the account the first one registered.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { type HttpCollector, startHttpCollector } from "../support/http-collector.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Pebble, pebbleAcmeEnv, pebbleInstalled, startPebble } from "../support/pebble.ts";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";

describe.skipIf(!pebbleInstalled())("ACME failing", () => {
  let dns: DnsServer;
  let pebble: Pebble;
  let http: HttpCollector;
  let mf: TestMailferry;
  const seen = () => http.json<{ event: string; key: string }>("/hook").filter((e) => e.key === "acme_failures").map((e) => e.event);

  beforeAll(async () => {
    // No A record for the host name yet: pebble cannot reach it to validate.
    dns = await startDnsServer({});
    const httpPort = await freePort();
    pebble = await startPebble({ dns, httpPort });
    http = startHttpCollector();
    mf = await startMailferry({
      dns,
      env: {
        ...pebbleAcmeEnv(pebble, httpPort),
        MAILFERRY_ALERTS_WEBHOOK_URL: `${http.url}/hook`,
        MAILFERRY_ALERTS_CHECK_INTERVAL: "1s",
        MAILFERRY_ALERTS_ACME_FAILURES: "2",
        MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true",
      },
    });
  }, 40_000);
  afterAll(async () => {
    await mf?.stop();
    await pebble?.stop();
    http?.stop();
    await dns?.close();
  });

  test("orders failing in a row raise the alert once, at the threshold", async () => {
    await waitFor(() => seen().length > 0, 30_000);
    expect(seen()).toEqual(["alert.started"]);
    const failed = mf.logs.filter((l) => l.event === "acme.failed");
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed.map((l) => l.attempt).slice(0, 2)).toEqual([1, 2]);
    // Each order fails for the name, never for the account (acme.email is empty here).
    for (const f of failed) expect(f.error).toContain("could not resolve");
    expect(mf.logs.some((l) => l.event === "acme.issued")).toBe(false);
  }, 40_000);

  test("once the host name resolves, the next order succeeds and the alert is resolved, once", async () => {
    dns.zones[TEST_HOSTNAME] = { A: ["127.0.0.1"] };
    await waitFor(() => seen().length > 1, 40_000);
    expect(mf.logs.some((l) => l.event === "acme.issued")).toBe(true);
    await Bun.sleep(2500);
    expect(seen()).toEqual(["alert.started", "alert.resolved"]);
  }, 60_000);
});
