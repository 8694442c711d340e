// The ACME decisions as pure functions, the plain-HTTP answer, the [acme]
// settings and what a stored certificate must be to be used.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../src/config/index.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { createLogger } from "../../src/log.ts";
import { DATABASE_FILE, openStore } from "../../src/store/db.ts";
import { CERT_FILE, createAcmeManager, KEY_FILE, META_FILE } from "../../src/tls/acme.ts";
import { parseCertificate, generateSelfSigned, keyMatches, loadTlsCredentials } from "../../src/tls/credentials.ts";
import { answerPlainHttp } from "../../src/tls/public.ts";
import { certificateNames, decide, MAX_NAMES, MAX_RETRY_DELAY, orderReason, retryDelay } from "../../src/tls/renewal.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 0, 1);
const DIRECTORY = "https://acme.test/directory";
const NAMES = ["mx.example.test", "mta-sts.a.test"];
const valid = { names: NAMES, notAfter: NOW + 60 * DAY, directoryUrl: DIRECTORY };

describe("which names the certificate covers", () => {
  test("the hostname first, then each domain's mta-sts host once, sorted", () => {
    expect(certificateNames("mx.example.test", ["b.test", "a.test", "b.test"]).names).toEqual(["mx.example.test", "mta-sts.a.test", "mta-sts.b.test"]);
  });

  test(`at most ${MAX_NAMES} names; the rest are reported as left out`, () => {
    const domains = Array.from({ length: MAX_NAMES + 1 }, (_, i) => `d${String(i).padStart(3, "0")}.test`);
    const { names, leftOut } = certificateNames("mx.example.test", domains);
    expect(names).toHaveLength(MAX_NAMES);
    expect(names[0]).toBe("mx.example.test");
    expect(leftOut).toEqual(["mta-sts.d099.test", "mta-sts.d100.test"]);
  });
});

describe("when to order", () => {
  const input = { names: NAMES, directoryUrl: DIRECTORY, now: NOW, renewBefore: 30 * DAY };

  test("no certificate, another CA, other names, near expiry — or nothing to do", () => {
    expect(orderReason({ ...input, stored: null })).toBe("missing");
    expect(orderReason({ ...input, stored: { ...valid, directoryUrl: "https://staging.test/directory" } })).toBe("directory_changed");
    expect(orderReason({ ...input, stored: { ...valid, names: ["mx.example.test"] } })).toBe("names_changed");
    expect(orderReason({ ...input, stored: { ...valid, names: [...NAMES, "mta-sts.gone.test"] } })).toBe("names_changed");
    expect(orderReason({ ...input, stored: { ...valid, notAfter: NOW + 29 * DAY } })).toBe("expiring");
    expect(orderReason({ ...input, stored: valid })).toBeNull();
    // The same names in another order are the same certificate.
    expect(orderReason({ ...input, stored: { ...valid, names: [...NAMES].reverse() } })).toBeNull();
  });

  test("after a failure the same order waits for its retry time; changed names are tried at once", () => {
    const failure = { names: NAMES, count: 2, retryAt: NOW + 60_000 };
    expect(decide({ ...input, stored: null, failure })).toEqual({ action: "wait", reason: "missing", retryAt: NOW + 60_000 });
    expect(decide({ ...input, stored: null, failure, now: NOW + 60_000 })).toEqual({ action: "order", reason: "missing" });
    expect(decide({ ...input, stored: null, failure: { ...failure, names: ["mx.example.test"] } })).toEqual({ action: "order", reason: "missing" });
    expect(decide({ ...input, stored: valid, failure })).toEqual({ action: "keep" });
  });

  test("retry delays double from the check interval up to six hours", () => {
    expect([1, 2, 3, 4].map((n) => retryDelay(n, 300_000))).toEqual([300_000, 600_000, 1_200_000, 2_400_000]);
    expect(retryDelay(20, 300_000)).toBe(MAX_RETRY_DELAY);
    expect(retryDelay(1, 2 * MAX_RETRY_DELAY)).toBe(2 * MAX_RETRY_DELAY);
  });
});

describe("plain HTTP on acme.http_port", () => {
  const pending = async (token: string) => (token === "tok" ? "tok.thumbprint" : undefined);

  test("answers a pending challenge with its key authorization, and 404 for any other token", async () => {
    const hit = await answerPlainHttp(new Request("http://mx.example.test/.well-known/acme-challenge/tok"), pending, 443);
    expect(hit.status).toBe(200);
    expect(await hit.text()).toBe("tok.thumbprint");
    expect((await answerPlainHttp(new Request("http://mx.example.test/.well-known/acme-challenge/other"), pending, 443)).status).toBe(404);
  });

  test("redirects everything else to the same URL on HTTPS", async () => {
    const standard = await answerPlainHttp(new Request("http://mta-sts.a.test/.well-known/mta-sts.txt?x=1"), pending, 443);
    expect(standard.status).toBe(301);
    expect(standard.headers.get("location")).toBe("https://mta-sts.a.test/.well-known/mta-sts.txt?x=1");
    expect((await answerPlainHttp(new Request("http://mx.example.test:8080/verify/t"), pending, 8443)).headers.get("location")).toBe("https://mx.example.test:8443/verify/t");
  });
});

describe("[acme] settings", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const load = (env: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-acme-config-"));
    dirs.push(dir);
    return loadConfig({ env: { MAILFERRY_DATA_DIR: dir, ...env } });
  };
  const refusal = (env: Record<string, string>) => {
    try {
      load(env);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error("expected a ConfigError");
  };

  test("defaults: off, Let's Encrypt production, ports 80 and 443, renewal 30 days before expiry", () => {
    expect(load({}).acme).toEqual({
      enabled: false,
      directoryUrl: "https://acme-v02.api.letsencrypt.org/directory",
      email: null,
      httpPort: 80,
      httpsPort: 443,
      caFile: null,
      renewBefore: 30 * DAY,
      checkInterval: 300_000,
    });
  });

  test("ACME together with an own certificate is refused, naming the keys", () => {
    const err = refusal({ MAILFERRY_ACME_ENABLED: "true", MAILFERRY_TLS_CERT: "/etc/c.pem", MAILFERRY_TLS_KEY: "/etc/k.pem" });
    expect(err.source).toBe("MAILFERRY_TLS_CERT");
    expect(err.message).toContain("MAILFERRY_ACME_ENABLED=true");
    // Without ACME the same certificate settings are fine.
    expect(load({ MAILFERRY_TLS_CERT: "/etc/c.pem", MAILFERRY_TLS_KEY: "/etc/k.pem" }).tls.cert).toBe("/etc/c.pem");
  });

  test("one port for both listeners, an empty directory or a bad contact address are refused", () => {
    expect(refusal({ MAILFERRY_ACME_ENABLED: "true", MAILFERRY_ACME_HTTP_PORT: "8443", MAILFERRY_ACME_HTTPS_PORT: "8443" }).source).toBe("MAILFERRY_ACME_HTTPS_PORT");
    expect(refusal({ MAILFERRY_ACME_ENABLED: "true", MAILFERRY_ACME_DIRECTORY_URL: "" }).source).toBe("MAILFERRY_ACME_DIRECTORY_URL");
    expect(refusal({ MAILFERRY_ACME_EMAIL: "not an address" }).source).toBe("MAILFERRY_ACME_EMAIL");
    expect(load({ MAILFERRY_ACME_EMAIL: "Admin@Example.TEST" }).acme.email).toBe("Admin@example.test");
  });
});

describe("certificates on disk", () => {
  test("facts of a certificate, and whether a key is its own", () => {
    const a = generateSelfSigned("a.example.test");
    const b = generateSelfSigned("b.example.test");
    const facts = parseCertificate(a.cert);
    expect(facts.names).toEqual(["a.example.test"]);
    expect(facts.notAfter).toBeGreaterThan(Date.now() + 3000 * DAY);
    expect(facts.serial).toMatch(/^[0-9A-F]+$/);
    expect(keyMatches(a.cert, a.key)).toBe(true);
    expect(keyMatches(a.cert, b.key)).toBe(false);
  });

  test("a stored certificate with the key of another is not used: the self-signed one serves", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mailferry-acme-stored-"));
    try {
      const a = generateSelfSigned("mx.example.test");
      const b = generateSelfSigned("mx.example.test");
      mkdirSync(join(dataDir, "acme"));
      writeFileSync(join(dataDir, CERT_FILE), a.cert);
      writeFileSync(join(dataDir, KEY_FILE), b.key);
      writeFileSync(join(dataDir, META_FILE), JSON.stringify({ directory_url: DIRECTORY }));
      const config = loadConfig({ env: { MAILFERRY_DATA_DIR: dataDir, MAILFERRY_HOSTNAME: "mx.example.test", MAILFERRY_ACME_ENABLED: "true", MAILFERRY_DNS_SERVERS: "127.0.0.1:53" } });
      const logs: Record<string, unknown>[] = [];
      const logger = createLogger({ level: "debug", format: "json", write: (line) => logs.push(JSON.parse(line)) });
      const store = await openStore(join(dataDir, DATABASE_FILE));
      const fallback = loadTlsCredentials(config);
      const manager = createAcmeManager({ config, db: store.db, resolver: createResolver({ servers: config.dns.servers, timeout: 1000 }), logger, fallback });
      expect(manager.current()).toBe(fallback);
      expect(logs.find((l) => l.event === "acme.stored_unusable")?.error).toContain("is not the key of");
      await store.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
