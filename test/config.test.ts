import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, defaultWorkerThreads, envName, flagName, loadConfig, loadConfigWithOrigins, SETTINGS, systemResolvers } from "../src/config/index.ts";
import { byteSize, dnsServers, duration } from "../src/config/values.ts";
import { DATABASE_FILE, databaseLocation } from "../src/store/db.ts";

const dirs: string[] = [];
function dataDir(toml?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-config-"));
  dirs.push(dir);
  if (toml !== undefined) writeFileSync(join(dir, "config.toml"), toml);
  return dir;
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("layering: defaults < config.toml < environment < flags", () => {
  test("defaults are the development ones", () => {
    const config = loadConfig({ env: {}, cwd: dataDir() });
    expect(config.dataDir).toEndWith("/data");
    expect(config.smtp).toMatchObject({ host: "127.0.0.1", port: 2525, maxSize: 50 * 1024 * 1024, socketTimeout: 180_000 });
    expect(config.http).toEqual({ host: "127.0.0.1", port: 8080, tls: false, publicUrl: null });
    expect(config.delivery.verifyDestinations).toBe("tokens");
    expect(config.addresses).toEqual({ randomSubdomain: false, subdomainMatch: false });
    expect(config.outbound.port).toBe(25);
    expect(config.tls).toEqual({ cert: null, key: null });
    expect(config.configFile).toBeNull();
  });

  test("each layer overrides the one below, key by key", () => {
    const dir = dataDir(`hostname = "toml.example.test"\n[smtp]\nport = 25\nhost = "0.0.0.0"\n[http]\nport = 9000\n`);
    const env = { MAILFERRY_DATA_DIR: dir, MAILFERRY_SMTP_PORT: "2600", MAILFERRY_HTTP_PORT: "9100" };
    const { config, effective } = loadConfigWithOrigins({ env, flags: { "http-port": "9200" } });
    expect(config.hostname).toBe("toml.example.test");
    expect(config.smtp.host).toBe("0.0.0.0");
    expect(config.smtp.port).toBe(2600);
    expect(config.http.port).toBe(9200);
    expect(config.configFile).toBe(join(dir, "config.toml"));
    const origin = (key: string) => effective.find((e) => e.key === key)!.origin;
    expect(origin("hostname")).toStartWith("hostname in ");
    expect(origin("smtp.port")).toBe("MAILFERRY_SMTP_PORT");
    expect(origin("http.port")).toBe("--http-port");
    expect(origin("outbound.port")).toBe("default");
  });

  test("with PostgreSQL the database's shared values sit between config.toml and the environment; node-local keys are not read from it", () => {
    const dir = dataDir(`hostname = "toml.example.test"\n[greylist]\ndelay = 60\n[smtp]\nmax_size = "10MB"\n`);
    const shared = { hostname: "shared.example.test", "greylist.delay": "2m", "smtp.max_size": "20MB", "limits.connections_per_hour": "7" };
    const { config, effective } = loadConfigWithOrigins({ env: { MAILFERRY_DATA_DIR: dir, MAILFERRY_SMTP_MAX_SIZE: "30MB" }, shared });
    const origin = (key: string) => effective.find((e) => e.key === key)!.origin;
    expect([config.greylist.delay, origin("greylist.delay")]).toEqual([120_000, "database"]);
    expect([config.limits.connectionsPerHour, origin("limits.connections_per_hour")]).toEqual([7, "database"]);
    expect([config.smtp.maxSize, origin("smtp.max_size")]).toEqual([30 * 1024 ** 2, "MAILFERRY_SMTP_MAX_SIZE"]);
    expect(config.hostname).toBe("toml.example.test");
    expect(SETTINGS.filter((s) => s.node).map((s) => [s.section, s.key].filter(Boolean).join("."))).toEqual(expect.arrayContaining(["hostname", "database.url", "smtp.port", "http.host", "tls.cert"]));
    // A bad value kept in the database is named as such.
    expect(configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: dir }, shared: { "greylist.delay": "soon" } })).message).toContain("[greylist] delay in the database");
  });

  test("the data dir comes from the flag, then MAILFERRY_DATA_DIR, and holds config.toml", () => {
    const a = dataDir(`[smtp]\nport = 1111\n`);
    const b = dataDir(`[smtp]\nport = 2222\n`);
    expect(loadConfig({ env: { MAILFERRY_DATA_DIR: a } }).smtp.port).toBe(1111);
    expect(loadConfig({ env: { MAILFERRY_DATA_DIR: a }, flags: { "data-dir": b } }).smtp.port).toBe(2222);
  });

  test("MAILFERRY_CONFIG points at a config file elsewhere (e.g. /etc/mailferry/config.toml)", () => {
    const dir = dataDir();
    const file = join(dir, "elsewhere.toml");
    writeFileSync(file, `[outbound]\nport = 2526\n[dns]\nservers = ["127.0.0.1:5353", "[::1]:53"]\n`);
    const config = loadConfig({ env: { MAILFERRY_DATA_DIR: dir, MAILFERRY_CONFIG: file } });
    expect(config.outbound.port).toBe(2526);
    expect(config.dns.servers).toEqual([
      { host: "127.0.0.1", port: 5353 },
      { host: "::1", port: 53 },
    ]);
  });

  test("names: MAILFERRY_<SECTION>_<KEY>, --<section>-<key>, [section] key", () => {
    const maxSize = SETTINGS.find((s) => s.key === "max_size")!;
    expect(envName(maxSize)).toBe("MAILFERRY_SMTP_MAX_SIZE");
    expect(flagName(maxSize)).toBe("smtp-max-size");
    expect(envName(SETTINGS.find((s) => s.key === "hostname")!)).toBe("MAILFERRY_HOSTNAME");
    const dir = dataDir(`[smtp]\nmax_size = "2MB"\n`);
    expect(loadConfig({ env: { MAILFERRY_DATA_DIR: dir } }).smtp.maxSize).toBe(2 * 1024 * 1024);
  });

  test("the fixed environment names the scripts rely on all exist", () => {
    const names = SETTINGS.map(envName);
    for (const name of [
      "MAILFERRY_HOSTNAME",
      "MAILFERRY_SMTP_HOST",
      "MAILFERRY_SMTP_PORT",
      "MAILFERRY_HTTP_HOST",
      "MAILFERRY_HTTP_PORT",
      "MAILFERRY_DNS_SERVERS",
      "MAILFERRY_OUTBOUND_PORT",
      "MAILFERRY_TLS_CERT",
      "MAILFERRY_TLS_KEY",
    ]) {
      expect(names).toContain(name);
    }
  });
});

describe("invalid configuration names the bad key and value", () => {
  test("from the environment", () => {
    const err = configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: dataDir(), MAILFERRY_SMTP_PORT: "70000" } }));
    expect(err.source).toBe("MAILFERRY_SMTP_PORT");
    expect(err.message).toContain('MAILFERRY_SMTP_PORT="70000"');
    expect(err.message).toContain("0 to 65535");
  });

  test("from a flag", () => {
    const err = configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: dataDir() }, flags: { "dns-servers": "not-an-ip" } }));
    expect(err.source).toBe("--dns-servers");
    expect(err.message).toContain('"not-an-ip" is not an IP address');
  });

  test("from config.toml: bad value, unknown key, unknown section, syntax error", () => {
    const bad = dataDir(`[http]\nport = "eighty"\n`);
    expect(configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: bad } })).message).toContain(`[http] port in ${join(bad, "config.toml")}="eighty"`);
    const typo = dataDir(`[smtp]\nprot = 25\n`);
    expect(configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: typo } })).message).toContain("[smtp] prot");
    const section = dataDir(`[smpt]\nport = 25\n`);
    expect(configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: section } })).message).toContain("smpt");
    const syntax = dataDir(`[smtp\nport = 25\n`);
    expect(configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: syntax } })).message).toContain("line 1)");
    const later = dataDir(`hostname = "mx.example.test"\n\n[smtp]\nport = = 25\n`);
    expect(configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: later } })).message).toContain("(line 4)");
  });

  test("a named config file that does not exist", () => {
    const err = configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: dataDir(), MAILFERRY_CONFIG: "/nonexistent/mailferry.toml" } }));
    expect(err.source).toBe("MAILFERRY_CONFIG");
  });

  test("a TLS certificate without its key", () => {
    const err = configError(() => loadConfig({ env: { MAILFERRY_DATA_DIR: dataDir(), MAILFERRY_TLS_CERT: "/etc/ssl/cert.pem" } }));
    expect(err.source).toBe("MAILFERRY_TLS_KEY");
  });

  test("values of every kind are checked", () => {
    const env = (extra: Record<string, string>) => ({ MAILFERRY_DATA_DIR: dataDir(), ...extra });
    expect(configError(() => loadConfig({ env: env({ MAILFERRY_SMTP_HOST: "example.com" }) })).source).toBe("MAILFERRY_SMTP_HOST");
    expect(configError(() => loadConfig({ env: env({ MAILFERRY_HOSTNAME: "bad_host!" }) })).source).toBe("MAILFERRY_HOSTNAME");
    expect(configError(() => loadConfig({ env: env({ MAILFERRY_SMTP_MAX_SIZE: "lots" }) })).source).toBe("MAILFERRY_SMTP_MAX_SIZE");
    expect(configError(() => loadConfig({ env: env({ MAILFERRY_DNS_TIMEOUT: "0" }) })).source).toBe("MAILFERRY_DNS_TIMEOUT");
    expect(configError(() => loadConfig({ env: env({ MAILFERRY_LOG_FORMAT: "xml" }) })).message).toContain("auto, json, text");
  });
});

describe("[database] url", () => {
  test("empty keeps SQLite in the data directory; a postgres:// URL is where the state lives", () => {
    const dir = dataDir();
    expect(databaseLocation(loadConfig({ env: { MAILFERRY_DATA_DIR: dir } }))).toBe(join(dir, DATABASE_FILE));
    const url = "postgres://mailferry:s3cret@127.0.0.1:5432/mailferry";
    expect(databaseLocation(loadConfig({ env: { MAILFERRY_DATA_DIR: dir, MAILFERRY_DATABASE_URL: url } }))).toBe(url);
    expect(loadConfig({ env: { MAILFERRY_DATA_DIR: dir }, flags: { "database-url": "postgresql://db.internal/mf" } }).database.url).toBe("postgresql://db.internal/mf");
  });

  test("anything else is refused, saying what is expected", () => {
    const env = (url: string) => ({ MAILFERRY_DATA_DIR: dataDir(), MAILFERRY_DATABASE_URL: url });
    const mysql = configError(() => loadConfig({ env: env("mysql://mf:s3cret@127.0.0.1/mf") }));
    expect(mysql.source).toBe("MAILFERRY_DATABASE_URL");
    expect(mysql.message).toContain("must start with postgres://");
    expect(mysql.message).not.toContain("s3cret");
    expect(configError(() => loadConfig({ env: env("postgres://127.0.0.1") })).message).toContain("must name a host and a database");
    expect(configError(() => loadConfig({ env: env("not a url") })).message).toContain("must be a PostgreSQL URL");
  });
});

describe("value parsers", () => {
  test("sizes, durations, DNS server lists", () => {
    expect(byteSize("50MB")).toBe(52_428_800);
    expect(byteSize("512k")).toBe(524_288);
    expect(byteSize(1000)).toBe(1000);
    expect(duration("500ms")).toBe(500);
    expect(duration("3m")).toBe(180_000);
    expect(duration(30)).toBe(30_000);
    expect(dnsServers("127.0.0.1:5353, 10.0.0.1")).toEqual([
      { host: "127.0.0.1", port: 5353 },
      { host: "10.0.0.1", port: 53 },
    ]);
    expect(dnsServers("::1")).toEqual([{ host: "::1", port: 53 }]);
  });

  test("system resolvers are read from resolv.conf", () => {
    const dir = dataDir();
    const file = join(dir, "resolv.conf");
    writeFileSync(file, "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n");
    expect(systemResolvers(file)).toBe("192.0.2.53:53,[fe80::1]:53");
    expect(systemResolvers(join(dir, "missing"))).toBe("127.0.0.1:53");
  });

  test("worker threads: none on 1 or 2 cores, one per core beyond the first above, at most 4; 0 to 16 accepted", () => {
    expect([1, 2, 3, 4, 5, 8, 64].map(defaultWorkerThreads)).toEqual([0, 0, 2, 3, 4, 4, 4]);
    const env = (value: string) => ({ env: { MAILFERRY_DATA_DIR: dataDir(), MAILFERRY_FORWARDING_WORKER_THREADS: value } });
    expect(loadConfig(env("0")).forwarding.workerThreads).toBe(0);
    expect(loadConfig(env("3")).forwarding.workerThreads).toBe(3);
    for (const bad of ["-1", "17", "two", "1.5"]) expect(() => loadConfig(env(bad))).toThrow(`MAILFERRY_FORWARDING_WORKER_THREADS="${bad}": must be a whole number from 0 to 16`);
  });
});
