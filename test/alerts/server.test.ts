// Alerts about the server itself, with real parts (docs/operations.md,
// "Alerts"): a configured certificate 5 days from expiry, too little disk
// space and an outbox that does not drain (the admin's MX defers the alert
// mails) each raise an alert once at the webhook; freed space and a drained
// outbox resolve theirs, once.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { certificateValidBetween } from "../support/pki.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { type HttpCollector, startHttpCollector } from "../support/http-collector.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let mf: TestMailferry;
let admin: Sink;
let http: HttpCollector;
let certDir: string;
let deferring = true;
type Posted = { event: string; key: string; detail: string };
const posted = () => http.json<Posted>("/hook");
const seen = () => posted().map((e) => `${e.event} ${e.key}`);

beforeAll(async () => {
  admin = await startSink({ host: "127.0.0.3", onRcpt: () => (deferring ? { code: 421, text: "4.7.0 Try again later" } : undefined) });
  http = startHttpCollector();
  dns = await startDnsServer({ "admin.test": { MX: [{ priority: 10, exchange: "mx.admin.test" }] }, "mx.admin.test": { A: ["127.0.0.3"] } });
  certDir = mkdtempSync(join(tmpdir(), "mailferry-cert-"));
  const soon = certificateValidBetween(TEST_HOSTNAME, new Date(Date.now() - 80 * 86_400_000), new Date(Date.now() + 5 * 86_400_000));
  writeFileSync(join(certDir, "cert.pem"), soon.cert);
  writeFileSync(join(certDir, "key.pem"), soon.key);
  mf = await startMailferry({
    dns,
    env: {
      MAILFERRY_TLS_CERT: join(certDir, "cert.pem"),
      MAILFERRY_TLS_KEY: join(certDir, "key.pem"),
      MAILFERRY_OUTBOUND_PORT: String(admin.port),
      MAILFERRY_ALERTS_EMAIL: "root@admin.test",
      MAILFERRY_ALERTS_WEBHOOK_URL: `${http.url}/hook`,
      MAILFERRY_ALERTS_CHECK_INTERVAL: "1s",
      // More than any disk has free: the alert starts at the first check.
      MAILFERRY_ALERTS_DISK_FREE: "1000000GB",
      MAILFERRY_ALERTS_OUTBOX_SIZE: "2",
      MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true",
    },
  });
});
afterAll(async () => {
  await mf.stop();
  http.stop();
  await dns.close();
  await admin.close();
  rmSync(certDir, { recursive: true, force: true });
});

test("certificate near expiry, low disk space and a stuck outbox each raise an alert once", async () => {
  await waitFor(() => seen().includes("alert.started outbox_size"), 15_000);
  expect(seen().sort()).toEqual(["alert.started certificate_expiry", "alert.started disk_free", "alert.started outbox_size"]);
  expect(posted().find((e) => e.key === "certificate_expiry")!.detail).toContain("in 4 days");
  await Bun.sleep(2500);
  expect(posted().length).toBe(3);
}, 30_000);

test("freed space and a drained outbox resolve their alerts, once; the certificate's lasts", async () => {
  const { config, store, outbox } = mf.appliance;
  deferring = false;
  config.alerts.diskFree = 1;
  await store.db.updateTable("outbox").set({ next_attempt: 0 }).execute();
  await outbox.runDue();
  await waitFor(() => posted().length >= 5, 10_000);
  await Bun.sleep(2500);
  expect(seen().slice(3).sort()).toEqual(["alert.resolved disk_free", "alert.resolved outbox_size"]);
  expect(admin.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())?.[1]).join("\n")).toContain("Alert: The TLS certificate expires soon");
}, 30_000);
