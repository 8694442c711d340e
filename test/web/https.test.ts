// With http.tls the admin port speaks HTTPS with the configured certificate,
// and only then are cookies Secure and HSTS sent.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdmin } from "../../src/store/admins.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";

let dns: DnsServer;
let mf: TestMailferry;
let ca: TestCa;
const certDir = mkdtempSync(join(tmpdir(), "mailferry-https-"));

beforeAll(async () => {
  ca = createTestCa();
  const { cert, key } = ca.issue("127.0.0.1");
  writeFileSync(join(certDir, "cert.pem"), cert);
  writeFileSync(join(certDir, "key.pem"), key);
  dns = await startDnsServer({});
  mf = await startMailferry({
    dns,
    env: { MAILFERRY_HTTP_TLS: "true", MAILFERRY_TLS_CERT: join(certDir, "cert.pem"), MAILFERRY_TLS_KEY: join(certDir, "key.pem") },
  });
  await createAdmin(mf.appliance.store.db, "admin", "correct horse battery staple");
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  rmSync(certDir, { recursive: true, force: true });
});

test("the admin URL is https and the configured certificate verifies", async () => {
  expect(mf.httpUrl).toStartWith("https://127.0.0.1:");
  const res = await fetch(`${mf.httpUrl}login`, { tls: { ca: ca.cert } });
  expect(res.status).toBe(200);
  expect(res.headers.get("strict-transport-security")).toBe("max-age=31536000");
  // A certificate from another CA is not what is served.
  await expect(fetch(`${mf.httpUrl}login`, { tls: { ca: createTestCa().cert } })).rejects.toThrow();
});

test("the session cookie is Secure", async () => {
  const res = await fetch(`${mf.httpUrl}login`, {
    method: "POST",
    body: new URLSearchParams({ username: "admin", password: "correct horse battery staple" }),
    redirect: "manual",
    tls: { ca: ca.cert },
  });
  expect(res.status).toBe(302);
  expect(res.headers.get("set-cookie")).toMatch(/mf_session=[^;]+;.*Secure/i);
});

test("plain HTTP on the admin port gets no page", async () => {
  const res = await fetch(mf.httpUrl.replace("https:", "http:")).catch((err: Error) => err);
  if (res instanceof Response) expect(res.status).toBe(400);
  else expect(res).toBeInstanceOf(Error);
});
