// ACME end to end against a real CA (pebble on loopback): issuance by HTTP-01,
// the certificate on STARTTLS, the public HTTPS port and the admin HTTPS port,
// renewal without a restart when the names change or expiry nears, reuse of
// the stored certificate after a restart, and an unreachable CA.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerCertificate, TLSSocket } from "node:tls";
import { DATABASE_FILE, openStore } from "../../src/store/db.ts";
import { addDomain } from "../../src/store/domains.ts";
import { createToken } from "../../src/store/tokens.ts";
import { ACCOUNT_KEY_FILE, CERT_FILE, KEY_FILE } from "../../src/tls/acme.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Pebble, pebbleAcmeEnv, pebbleInstalled, startPebble } from "../support/pebble.ts";
import { freePort } from "../support/ports.ts";
import { SmtpTalk } from "../support/smtp-client.ts";
import { waitFor } from "../support/wait.ts";

const HOST = TEST_HOSTNAME;
const LOOPBACK = { A: ["127.0.0.1"] };

/** STARTTLS on a new session; the socket stays open for the caller. */
async function starttls(port: number, ca?: string): Promise<{ talk: SmtpTalk; socket: TLSSocket; cert: PeerCertificate }> {
  const { talk } = await SmtpTalk.connect(port);
  await talk.send("EHLO client.test");
  expect((await talk.send("STARTTLS")).code).toBe(220);
  const socket = await talk.startTls({ servername: HOST, ...(ca ? { ca } : {}) });
  return { talk, socket, cert: socket.getPeerCertificate() };
}

/** A request to 127.0.0.1 as one to `host` would be made (SNI and Host), verified against `ca`. */
function httpsGet(port: number, host: string, path: string, ca: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string; cert: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const options = { host: "127.0.0.1", port, path, method: init.method ?? "GET", servername: host, headers: { ...init.headers, host }, ca, agent: false, timeout: 5000 };
    const req = request(options, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate();
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode!, body, cert }));
    });
    req.on("timeout", () => req.destroy(new Error("HTTPS request timed out")));
    req.on("error", reject);
    req.end(init.body);
  });
}

const sans = (cert: PeerCertificate) => (cert.subjectaltname ?? "").split(", ").map((s) => s.replace(/^DNS:/, ""));
const events = (mf: TestMailferry, event: string) => mf.logs.filter((l) => l.event === event);

async function seedDomains(dataDir: string, domains: string[]): Promise<void> {
  const store = await openStore(join(dataDir, DATABASE_FILE));
  for (const domain of domains) await addDomain(store.db, domain);
  await store.close();
}

describe.skipIf(!pebbleInstalled())("against pebble", () => {
  let dns: DnsServer;
  let pebble: Pebble;
  let root: string;
  let httpPort: number;
  let mf: TestMailferry;
  let dataDir: string;
  let acmeEnv: Record<string, string>;
  const start = (extra: Record<string, string> = {}) => startMailferry({ dns, dataDir, env: { ...acmeEnv, ...extra } });
  const issued = (n: number) => waitFor<Record<string, unknown>>(() => events(mf, "acme.issued")[n - 1] ?? events(mf, "acme.failed")[0], 20_000);

  beforeAll(async () => {
    dns = await startDnsServer({ [HOST]: LOOPBACK, "mta-sts.one.test": LOOPBACK, "mta-sts.two.test": LOOPBACK });
    httpPort = await freePort();
    pebble = await startPebble({ dns, httpPort });
    root = await pebble.root();
    acmeEnv = { ...pebbleAcmeEnv(pebble, httpPort), MAILFERRY_ACME_EMAIL: "postmaster@one.test", MAILFERRY_HTTP_TLS: "true" };
    dataDir = mkdtempSync(join(tmpdir(), "mailferry-acme-"));
    await seedDomains(dataDir, ["one.test"]);
    mf = await start();
    const first = await issued(1);
    if (first?.event !== "acme.issued") throw new Error(`no certificate issued: ${JSON.stringify(first)}\n${pebble.output().slice(-3000)}`);
  }, 40_000);

  afterAll(async () => {
    await mf?.stop();
    await pebble?.stop();
    await dns?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("the certificate for the hostname and mta-sts.<domain> is ordered and stored with private keys", () => {
    expect(events(mf, "acme.order")[0]).toMatchObject({ reason: "missing", names: [HOST, "mta-sts.one.test"] });
    for (const file of [ACCOUNT_KEY_FILE, KEY_FILE]) expect(statSync(join(dataDir, file)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, CERT_FILE)).isFile()).toBe(true);
  });

  test("STARTTLS serves the CA's certificate, which verifies up to pebble's root", async () => {
    const { talk, socket, cert } = await starttls(mf.smtpPort, root);
    expect(socket.authorized).toBe(true);
    expect(cert.issuer.CN).toStartWith("Pebble Intermediate CA");
    expect(sans(cert)).toEqual(expect.arrayContaining([HOST, "mta-sts.one.test"]));
    expect((await talk.send("EHLO client.test")).code).toBe(250);
    talk.close();
  });

  test("the public HTTPS port serves the MTA-STS policy in enforce mode, and no admin page", async () => {
    const port = mf.appliance.publicListeners!.httpsPort;
    const policy = await httpsGet(port, "mta-sts.one.test", "/.well-known/mta-sts.txt", root);
    expect(policy.status).toBe(200);
    expect(policy.body).toContain("mode: enforce");
    expect(policy.body).toContain(`mx: ${HOST}`);
    expect((await httpsGet(port, HOST, "/healthz", root)).status).toBe(200);
    for (const path of ["/", "/login", "/setup", "/api/v1/domains", "/metrics"]) expect((await httpsGet(port, HOST, path, root)).status).toBe(404);
  });

  test("the admin port (http.tls) uses the same certificate", async () => {
    const admin = await httpsGet(mf.appliance.http.port, HOST, "/healthz", root);
    expect(admin.status).toBe(200);
    expect(sans(admin.cert)).toContain("mta-sts.one.test");
  });

  test("verification links point at the public HTTPS port, which serves their page", async () => {
    const { token } = await createToken(mf.appliance.store.db, "acme-test", "write");
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const added = await httpsGet(mf.appliance.http.port, HOST, "/api/v1/destinations", root, { method: "POST", headers, body: JSON.stringify({ address: "me@elsewhere.test" }) });
    expect(added.status).toBeLessThan(300);
    const mail = await mf.appliance.store.db.selectFrom("outbox").innerJoin("outbox_recipients", "outbox_id", "id").select("raw").where("address", "=", "me@elsewhere.test").executeTakeFirstOrThrow();
    const link = new URL(/https:\/\/\S+\/verify\/[A-Za-z0-9_.-]+/.exec(Buffer.from(mail.raw).toString().replace(/=\r?\n/g, ""))![0]);
    const port = mf.appliance.publicListeners!.httpsPort;
    expect(link.origin).toBe(`https://${HOST}:${port}`);
    const page = await httpsGet(port, HOST, link.pathname, root);
    expect(page.status).toBe(200);
    expect(page.body).toContain('method="post"');
  });

  test("the DNS records owners publish announce the enforced policy", async () => {
    const { token } = await createToken(mf.appliance.store.db, "acme-dns", "read");
    const res = await httpsGet(mf.appliance.http.port, HOST, "/api/v1/domains/one.test/dns", root, { headers: { authorization: `Bearer ${token}` } });
    const records = (JSON.parse(res.body) as { records: { name: string; purpose: string }[] }).records;
    expect(records.find((r) => r.name === "_mta-sts.one.test.")?.purpose).toContain("mode enforce");
  });

  test("plain HTTP on acme.http_port redirects to HTTPS and knows no stale challenge", async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/verify/abc?x=1`, { headers: { host: HOST }, redirect: "manual" });
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe(`https://${HOST}:${mf.appliance.publicListeners!.httpsPort}/verify/abc?x=1`);
    expect((await fetch(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/unknown`)).status).toBe(404);
  });

  test("a new domain renews the certificate without a restart; open sessions keep working", async () => {
    const before = await starttls(mf.smtpPort, root);
    const oldSerial = before.cert.serialNumber;
    const publicPort = mf.appliance.publicListeners!.httpsPort;

    await addDomain(mf.appliance.store.db, "two.test");
    const renewed = await issued(2);
    expect(renewed?.event).toBe("acme.issued");
    expect(events(mf, "acme.renew_due").at(-1)).toMatchObject({ reason: "names_changed" });

    const after = await starttls(mf.smtpPort, root);
    expect(after.socket.authorized).toBe(true);
    expect(after.cert.serialNumber).not.toBe(oldSerial);
    expect(sans(after.cert)).toEqual(expect.arrayContaining([HOST, "mta-sts.one.test", "mta-sts.two.test"]));
    const policy = await httpsGet(publicPort, "mta-sts.two.test", "/.well-known/mta-sts.txt", root);
    expect(policy.cert.serialNumber).toBe(after.cert.serialNumber);
    expect(policy.body).toContain("mode: enforce");

    // The session opened before the renewal goes on, on its old certificate.
    expect(before.talk.closed).toBe(false);
    expect((await before.talk.send("NOOP")).code).toBe(250);
    expect(before.socket.getPeerCertificate().serialNumber).toBe(oldSerial);
    before.talk.close();
    after.talk.close();
  }, 30_000);

  test("a domain whose mta-sts name is not in DNS yet is left out instead of failing the order", async () => {
    const orders = events(mf, "acme.order").length;
    await addDomain(mf.appliance.store.db, "three.test");
    const warning = await waitFor(() => events(mf, "acme.names_left_out")[0], 5000);
    expect(warning).toMatchObject({ not_in_dns: ["mta-sts.three.test"] });
    await mf.appliance.acme!.check();
    expect(events(mf, "acme.order").length).toBe(orders);
  });

  test("after a restart the stored certificate is used again, with no new order", async () => {
    const { cert: served } = await starttls(mf.smtpPort, root).then((s) => (s.talk.close(), s));
    await mf.stop();
    mf = await start();
    await mf.appliance.acme!.check();
    expect(events(mf, "acme.stored")).toHaveLength(1);
    expect(events(mf, "acme.order")).toHaveLength(0);
    const again = await starttls(mf.smtpPort, root);
    expect(again.cert.serialNumber).toBe(served.serialNumber);
    again.talk.close();
  }, 30_000);

  test("when less than renew_before remains the certificate is renewed at start", async () => {
    const { cert: served } = await starttls(mf.smtpPort, root).then((s) => (s.talk.close(), s));
    await mf.stop();
    // Longer than the five years pebble's certificates are valid.
    mf = await start({ MAILFERRY_ACME_RENEW_BEFORE: "3650d" });
    expect((await issued(1))?.event).toBe("acme.issued");
    expect(events(mf, "acme.renew_due")[0]).toMatchObject({ reason: "expiring", serial: expect.any(String) });
    const renewed = await starttls(mf.smtpPort, root);
    expect(renewed.cert.serialNumber).not.toBe(served.serialNumber);
    renewed.talk.close();
  }, 30_000);
});

describe("with the CA unreachable", () => {
  let dns: DnsServer;
  let mf: TestMailferry;

  beforeAll(async () => {
    dns = await startDnsServer({ [HOST]: LOOPBACK, "mta-sts.one.test": LOOPBACK });
    // A port nothing listens on.
    const closed = await freePort();
    mf = await startMailferry({
      dns,
      domains: ["one.test"],
      env: {
        MAILFERRY_ACME_ENABLED: "true",
        MAILFERRY_ACME_DIRECTORY_URL: `https://127.0.0.1:${closed}/directory`,
        MAILFERRY_ACME_HTTP_PORT: String(await freePort()),
        MAILFERRY_ACME_HTTPS_PORT: "0",
        MAILFERRY_ACME_CHECK_INTERVAL: "1s",
      },
    });
  });
  afterAll(async () => {
    await mf?.stop();
    await dns?.close();
  });

  test("the server runs on the self-signed certificate, logs acme.failed and retries with growing delays", async () => {
    const second = await waitFor(() => events(mf, "acme.failed").find((l) => l.attempt === 2), 10_000);
    const [first] = events(mf, "acme.failed");
    expect(first).toMatchObject({ attempt: 1, retry_in: "1s", error: expect.stringContaining("ECONNREFUSED") });
    expect(second).toMatchObject({ attempt: 2, retry_in: "2s" });

    const { talk, cert } = await starttls(mf.smtpPort);
    expect(cert.issuer.CN).toBe(HOST);
    expect(cert.subject.CN).toBe(HOST);
    expect((await talk.send("EHLO client.test")).code).toBe(250);
    talk.close();
    expect((await fetch(`${mf.httpUrl}healthz`)).status).toBe(200);
  });

  test("the policy stays in testing mode while no CA certificate is in use", async () => {
    const port = mf.appliance.publicListeners!.httpsPort;
    const res = await fetch(`https://127.0.0.1:${port}/.well-known/mta-sts.txt`, { headers: { host: "mta-sts.one.test" }, tls: { rejectUnauthorized: false } });
    expect(await res.text()).toContain("mode: testing");
  });
});

test("a taken acme.http_port stops start-up naming the setting, and leaves the data dir usable", async () => {
  const dns = await startDnsServer({});
  const dataDir = mkdtempSync(join(tmpdir(), "mailferry-acme-port-"));
  const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("someone else") });
  const env = { MAILFERRY_ACME_ENABLED: "true", MAILFERRY_ACME_DIRECTORY_URL: `https://127.0.0.1:${await freePort()}/dir`, MAILFERRY_ACME_HTTPS_PORT: "0" };
  try {
    const refused = await startMailferry({ dns, dataDir, env: { ...env, MAILFERRY_ACME_HTTP_PORT: String(taken.port) } }).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain(`127.0.0.1:${taken.port} (MAILFERRY_ACME_HTTP_PORT)`);
    const mf = await startMailferry({ dns, dataDir, env: { ...env, MAILFERRY_ACME_HTTP_PORT: String(await freePort()) } });
    expect(mf.appliance.publicListeners).not.toBeNull();
    await mf.stop();
  } finally {
    await taken.stop(true);
    await dns.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
