// Alerts from DNS with the test DNS server (docs/operations.md, "Alerts"):
// once a managed domain's records were seen right, its MX pointing elsewhere
// raises an alert at the webhook, once, and putting it back resolves it; the
// server's address listed on a DNSBL zone likewise.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { zoneLine } from "../../src/auth/records.ts";
import { domainService } from "../../src/service/domains.ts";
import { dnsSeenRight } from "../../src/store/alerts.ts";
import { type DnsServer, publishZoneLines, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type HttpCollector, startHttpCollector } from "../support/http-collector.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let mf: TestMailferry;
let http: HttpCollector;
type Posted = { event: string; key: string; detail: string };
const posted = () => http.json<Posted>("/hook");
const eventsOf = (kind: string) => posted().filter((e) => e.key.startsWith(`${kind}:`));

beforeAll(async () => {
  http = startHttpCollector();
  // The server's address (127.0.0.1) listed on the DNSBL zone from the start.
  dns = await startDnsServer({ [TEST_HOSTNAME]: { A: ["127.0.0.1"] }, "1.0.0.127.dnsbl.test": { A: ["127.0.0.2"] } });
  mf = await startMailferry({
    dns,
    domains: ["drift.test"],
    env: { MAILFERRY_ALERTS_WEBHOOK_URL: `${http.url}/hook`, MAILFERRY_ALERTS_CHECK_INTERVAL: "1s", MAILFERRY_ALERTS_DNSBL_ZONES: "dnsbl.test", MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true" },
  });
  const { db, config } = { db: mf.appliance.store.db, config: mf.appliance.config };
  const records = await domainService({ db, config, now: Date.now }).records("drift.test");
  publishZoneLines(dns.zones, records.map(zoneLine).join("\n"));
  // Answers are not cached, so each check sees the zone as it is now.
  for (const name of Object.keys(dns.zones)) dns.zones[name]!.ttl = 0;
});
afterAll(async () => {
  await mf.stop();
  http.stop();
  await dns.close();
});

test("DNS drift: a record seen right that changes raises an alert once; put back, it is resolved", async () => {
  // The records are seen right by a check first: only then is a change drift.
  const mx = dns.zones["drift.test"]!.MX!;
  const mxLine = `drift.test. 3600 IN MX 10 ${TEST_HOSTNAME}.`;
  for (let i = 0; i < 100 && !(await dnsSeenRight(mf.appliance.store.db, "drift.test")).includes(mxLine); i++) await Bun.sleep(100);
  const exchange = mx[0]!.exchange;
  mx[0]!.exchange = "mx.elsewhere.test";
  await waitFor(() => eventsOf("dns_drift").length >= 1, 10_000);
  expect(eventsOf("dns_drift").map((e) => `${e.event} ${e.key}`)).toEqual(["alert.started dns_drift:drift.test"]);
  expect(eventsOf("dns_drift")[0]!.detail).toContain(mxLine);
  await Bun.sleep(2500);
  expect(eventsOf("dns_drift").length).toBe(1);
  mx[0]!.exchange = exchange;
  await waitFor(() => eventsOf("dns_drift").length >= 2, 10_000);
  expect(eventsOf("dns_drift").map((e) => `${e.event} ${e.key}`)).toEqual(["alert.started dns_drift:drift.test", "alert.resolved dns_drift:drift.test"]);
}, 30_000);

test("DNSBL: the server's address listed raises an alert once; delisted, it is resolved", async () => {
  await waitFor(() => eventsOf("dnsbl").length >= 1, 10_000);
  expect(eventsOf("dnsbl").map((e) => `${e.event} ${e.key}`)).toEqual(["alert.started dnsbl:dnsbl.test:127.0.0.1"]);
  expect(eventsOf("dnsbl")[0]!.detail).toContain("127.0.0.1 is listed on the blocklist dnsbl.test (127.0.0.2)");
  await Bun.sleep(2500);
  expect(eventsOf("dnsbl").length).toBe(1);
  delete dns.zones["1.0.0.127.dnsbl.test"];
  await waitFor(() => eventsOf("dnsbl").length >= 2, 10_000);
  expect(eventsOf("dnsbl").map((e) => e.event)).toEqual(["alert.started", "alert.resolved"]);
}, 30_000);
