// Outbound mail and MTA-STS fetches never reach loopback, private or
// link-local addresses unless outbound.allow_private: a sender's domain picks
// the MX of its bounces and vacation replies (docs/delivery-and-authentication.md).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createMtaSts } from "../../src/delivery/mta-sts.ts";
import { routeToDomain } from "../../src/delivery/mx.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { isPrivateAddress } from "../../src/net/ssrf.ts";
import { listEvents } from "../../src/store/events.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { createTestCa } from "../support/pki.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

let dns: DnsServer;
let sink: Sink;
let mf: TestMailferry;
let policyRequests = 0;
let policyServer: ReturnType<typeof Bun.serve>;
const ca = createTestCa();

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  policyServer = Bun.serve({ hostname: "127.0.0.3", port: 0, tls: ca.issue("mta-sts.inside.test"), fetch: () => (policyRequests++, new Response("version: STSv1\nmode: enforce\nmx: mx.inside.test\nmax_age: 86400\n")) });
  dns = await startDnsServer({
    "inside.test": { MX: [{ priority: 10, exchange: "mx.inside.test" }] },
    "mx.inside.test": { A: ["127.0.0.2"] },
    "_mta-sts.inside.test": { TXT: ["v=STSv1; id=1"] },
    "mta-sts.inside.test": { A: ["127.0.0.3"] },
    "mixed.test": { MX: [{ priority: 10, exchange: "mx1.mixed.test" }, { priority: 20, exchange: "mx2.mixed.test" }] },
    "mx1.mixed.test": { A: ["10.1.2.3"] },
    "mx2.mixed.test": { A: ["192.0.2.25"] },
  });
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=hello:someone@inside.test" },
    env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "false" },
  });
});
afterAll(async () => {
  await mf.stop();
  await sink.close();
  policyServer.stop(true);
  await dns.close();
});

const resolver = () => createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000 });

describe("the SSRF address list", () => {
  test("IPv6 forms that carry an IPv4 address are private: IPv4-compatible, NAT64, 6to4, Teredo", () => {
    for (const address of ["::7f00:1", "::10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::", "::1", "::ffff:7f00:1"]) {
      expect([address, isPrivateAddress(address)]).toEqual([address, true]);
    }
    for (const address of ["2001:db8::1", "2606:4700::1111", "8.8.8.8", "::ffff:8.8.8.8"]) expect([address, isPrivateAddress(address)]).toEqual([address, false]);
  });
});

describe("MX hosts on private addresses", () => {
  test("are refused with their own reason; allowed with allow_private", async () => {
    const refused = await routeToDomain("inside.test", resolver(), false);
    expect(refused).toMatchObject({ reason: "private_destination", refuse: { code: 550, enhanced: "5.4.4" } });
    expect(await routeToDomain("inside.test", resolver(), true)).toEqual({ hosts: [{ name: "mx.inside.test", addresses: ["127.0.0.2"] }] });
  });

  test("a domain's public hosts are still used, its private ones left out", async () => {
    expect(await routeToDomain("mixed.test", resolver(), false)).toEqual({ hosts: [{ name: "mx2.mixed.test", addresses: ["192.0.2.25"] }] });
  });

  test("forwarding to such a domain answers 550 with the reason in the mail log; nothing is sent", async () => {
    const answer = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "hello@example.test" }).then(
      (info) => String(info.response),
      (err) => `${err.responseCode} ${String(err.response)}`,
    );
    expect(answer).toMatch(/^550 .*5\.4\.4 .*private.*outbound\.allow_private/);
    expect(sink.connections).toBe(0);
    const events = await listEvents(mf.appliance.store.db, { stage: "delivery" });
    expect(events.map((e) => e.reason)).toEqual(["private_destination"]);
  });
});

describe("MTA-STS policy hosts on private addresses", () => {
  test("are not fetched unless allow_private", async () => {
    const options = { resolver: resolver(), port: Number(policyServer.port), ca: Buffer.from(ca.cert) };
    expect(await createMtaSts({ ...options, allowPrivate: false }).policyFor("inside.test")).toBeNull();
    expect(policyRequests).toBe(0);
    expect(await createMtaSts({ ...options, allowPrivate: true }).policyFor("inside.test")).toMatchObject({ mode: "enforce", mx: ["mx.inside.test"] });
    expect(policyRequests).toBe(1);
  });
});
