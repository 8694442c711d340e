// DNS drift alerts with the test DNS server (docs/operations.md, "Alerts"):
// once a managed domain's records were seen right, its MX pointing elsewhere
// raises an alert at the webhook, once, and putting it back resolves it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { zoneLine } from "../../src/auth/records.ts";
import { domainService } from "../../src/service/domains.ts";
import { dnsSeenRight } from "../../src/store/alerts.ts";
import { type DnsServer, publishZoneLines, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let mf: TestMailferry;
let http: ReturnType<typeof Bun.serve>;
const events: { event: string; key: string; detail: string }[] = [];

beforeAll(async () => {
  http = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      events.push((await req.json()) as (typeof events)[number]);
      return new Response("ok");
    },
  });
  dns = await startDnsServer({ [TEST_HOSTNAME]: { A: ["127.0.0.1"] } });
  mf = await startMailferry({
    dns,
    domains: ["drift.test"],
    env: { MAILFERRY_ALERTS_WEBHOOK_URL: `http://127.0.0.1:${http.port}/hook`, MAILFERRY_ALERTS_CHECK_INTERVAL: "1s", MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true" },
  });
  const { db, config } = { db: mf.appliance.store.db, config: mf.appliance.config };
  const records = await domainService({ db, config, now: Date.now }).records("drift.test");
  publishZoneLines(dns.zones, records.map(zoneLine).join("\n"));
  // Answers are not cached, so each check sees the zone as it is now.
  for (const name of Object.keys(dns.zones)) dns.zones[name]!.ttl = 0;
});
afterAll(async () => {
  await mf.stop();
  http.stop(true);
  await dns.close();
});

test("a record seen right that changes raises an alert once; put back, it is resolved", async () => {
  // The records are seen right by a check first: only then is a change drift.
  const mx = dns.zones["drift.test"]!.MX!;
  const mxLine = `drift.test. 3600 IN MX 10 ${TEST_HOSTNAME}.`;
  for (let i = 0; i < 100 && !(await dnsSeenRight(mf.appliance.store.db, "drift.test")).includes(mxLine); i++) await Bun.sleep(100);
  const exchange = mx[0]!.exchange;
  mx[0]!.exchange = "mx.elsewhere.test";
  await waitFor(() => events.length >= 1, 10_000);
  expect(events.map((e) => `${e.event} ${e.key}`)).toEqual(["alert.started dns_drift:drift.test"]);
  expect(events[0]!.detail).toContain(mxLine);
  await Bun.sleep(2500);
  expect(events.length).toBe(1);
  mx[0]!.exchange = exchange;
  await waitFor(() => events.length >= 2, 10_000);
  expect(events.map((e) => `${e.event} ${e.key}`)).toEqual(["alert.started dns_drift:drift.test", "alert.resolved dns_drift:drift.test"]);
}, 30_000);
