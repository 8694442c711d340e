// `mailferry doctor`: the decisions from plain facts, then the command as a
// real process against a running instance, with one thing broken at a time.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import * as judge from "../src/doctor/findings.ts";
import { openDatabase } from "../src/store/db.ts";
import { migrations } from "../src/store/migrations/index.ts";
import { schemaStatus } from "../src/store/versions.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "./support/mailferry.ts";
import { certificateValidBetween } from "./support/pki.ts";
import { freePort } from "./support/ports.ts";
import { type Postgres, startPostgres } from "./support/postgres.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { CLI, run } from "./support/smoke.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2026-06-01T00:00:00Z");

describe("decisions", () => {
  const port = (bind: judge.BindOutcome, portNumber = 25): judge.PortFacts => ({ name: "SMTP", setting: "smtp.port", host: "0.0.0.0", port: portNumber, bind });
  const running: judge.RunningMailferry = { version: "1.2.3", status: "ok", smtpPort: 25 };

  test("ports: free, picked at start, ours, someone else's, privileged, not an address here", () => {
    expect(judge.portFinding(port("free"), null)).toMatchObject({ severity: "ok", message: "0.0.0.0:25 can be bound" });
    expect(judge.portFinding(port("in_use", 0), null).severity).toBe("ok");
    expect(judge.portFinding(port("in_use"), running)).toMatchObject({ severity: "ok", message: "0.0.0.0:25 is answered by the running mailferry 1.2.3 (status ok)" });
    // A mailferry answers HTTP, but its SMTP listener is elsewhere: port 25 is someone else's.
    expect(judge.portFinding(port("in_use"), { ...running, smtpPort: 2525 })).toMatchObject({ severity: "error", message: "0.0.0.0:25 is in use by another program" });
    expect(judge.portFinding({ ...port("in_use", 8080), name: "HTTP", setting: "http.port" }, running).severity).toBe("ok");
    const other = judge.portFinding(port("in_use"), null);
    expect(other.severity).toBe("error");
    expect(other.fix).toContain("set smtp.port");
    expect(judge.portFinding(port("denied"), null)).toMatchObject({ severity: "error", fix: expect.stringContaining("CAP_NET_BIND_SERVICE") });
    // The CLI as the service user may not bind port 25, but the running server (with the unit's capability) holds it.
    expect(judge.portFinding(port("denied"), running)).toMatchObject({ severity: "ok", message: "0.0.0.0:25 is answered by the running mailferry 1.2.3 (status ok)" });
    expect(judge.portFinding(port("denied"), { ...running, smtpPort: 2525 }).severity).toBe("error");
    expect(judge.portFinding(port("unavailable"), null)).toMatchObject({ severity: "error", fix: expect.stringContaining("smtp.host") });
    expect(judge.portFinding(port({ failed: "EINVAL" }), null)).toMatchObject({ severity: "error", message: "0.0.0.0:25 cannot be bound: EINVAL" });
  });

  test("outbound: an answer is fine; silence or refusal is a warning that names the port-25 block; no target is 'could not check'", () => {
    const facts = (outcome: judge.OutboundFacts["outcome"], address: string | null = "192.0.2.1:25"): judge.OutboundFacts => ({ target: "MX of gmail.com: mx.test", address, outcome, greeting: "220 mx.test ESMTP" });
    expect(judge.outboundFinding(facts("answered"), false)).toMatchObject({ severity: "ok", message: "192.0.2.1:25 (MX of gmail.com: mx.test) answered: 220 mx.test ESMTP" });
    expect(judge.outboundFinding(facts("connected"), false).severity).toBe("ok");
    for (const outcome of ["refused", "timeout"] as const) {
      const finding = judge.outboundFinding(facts(outcome), false);
      expect(finding.severity).toBe("warning");
      expect(finding.fix).toContain("block outbound port 25");
    }
    expect(judge.outboundFinding(facts("timeout"), true).fix).toContain("[smarthost] host and port");
    expect(judge.outboundFinding(facts({ failed: "DNS lookup of MX for gmail.com failed (ETIMEOUT)" }, null), false)).toMatchObject({
      severity: "warning",
      message: "could not check: MX of gmail.com: mx.test: DNS lookup of MX for gmail.com failed (ETIMEOUT)",
    });
  });

  test("DNS: an answer, a name without A, a server that does not answer", () => {
    const facts = (answer: judge.DnsFacts["answer"]): judge.DnsFacts => ({ server: "127.0.0.1:53", hostname: "mx.example.com", answer });
    expect(judge.dnsFinding(facts({ addresses: ["192.0.2.1"] }))).toMatchObject({ severity: "ok", message: "127.0.0.1:53 answers: mx.example.com A 192.0.2.1" });
    expect(judge.dnsFinding(facts({ negative: "ENOTFOUND" }))).toMatchObject({ severity: "warning", fix: "publish an A record for mx.example.com: the MX records of your domains point at it" });
    expect(judge.dnsFinding(facts({ failed: "ETIMEOUT" }))).toMatchObject({ severity: "error", message: "127.0.0.1:53 did not answer the query for mx.example.com A (ETIMEOUT)" });
  });

  test("clock: before the build is an error; unsynchronized or unknown is a warning", () => {
    expect(judge.clockFinding({ now: NOW, builtAt: NOW + DAY, ntp: "synchronized" }).severity).toBe("error");
    expect(judge.clockFinding({ now: NOW, builtAt: NOW - DAY, ntp: "synchronized" })).toMatchObject({ severity: "ok" });
    expect(judge.clockFinding({ now: NOW, builtAt: null, ntp: "unsynchronized" })).toMatchObject({ severity: "warning", fix: expect.stringContaining("timedatectl set-ntp true") });
    expect(judge.clockFinding({ now: NOW, builtAt: NOW - DAY, ntp: "unknown" }).severity).toBe("warning");
  });

  test("data dir: missing, unwritable, someone else's, world-readable; each with its fix", () => {
    const facts = (over: Partial<judge.DataDirFacts>): judge.DataDirFacts => ({ path: "/var/lib/mailferry", stat: { uid: 1000, mode: 0o40750 }, writeError: null, uid: 1000, ...over });
    expect(judge.dataDirFindings(facts({}))).toEqual([{ check: "data dir", severity: "ok", message: "/var/lib/mailferry: writable, owned by uid 1000, mode 0750" }]);
    expect(judge.dataDirFindings(facts({ stat: null }))[0]!.severity).toBe("error");
    expect(judge.dataDirFindings(facts({ writeError: "EROFS" }))).toMatchObject([{ severity: "error", message: "/var/lib/mailferry is not writable: EROFS" }]);
    expect(judge.dataDirFindings(facts({ uid: 1001 }))).toMatchObject([{ severity: "error", message: "/var/lib/mailferry belongs to uid 1000, but this runs as uid 1001" }]);
    expect(judge.dataDirFindings(facts({ uid: 0 }))).toMatchObject([{ severity: "warning" }]);
    expect(judge.dataDirFindings(facts({ stat: { uid: 1000, mode: 0o40755 } }))).toEqual([
      { check: "data dir", severity: "error", message: "/var/lib/mailferry is readable by every user (mode 0755): it holds the keys and the database", fix: "chmod o-rwx /var/lib/mailferry" },
    ]);
  });

  test("database: none yet, unreadable, damaged, newer schema, pending migrations", () => {
    const path = "/d/mailferry.db";
    const current = schemaStatus(["001_initial", "002_routing"], ["001_initial", "002_routing"]);
    expect(judge.databaseFinding({ path, engine: "sqlite", state: null }).severity).toBe("warning");
    expect(judge.databaseFinding({ path, engine: "sqlite", state: { failed: "file is not a database" } }).severity).toBe("error");
    expect(judge.databaseFinding({ path, engine: "sqlite", state: { quickCheck: ["*** in database main ***", "Page 5: btreeInitPage() returns error code 11"], schema: current } })).toMatchObject({ severity: "error", fix: expect.stringContaining("mailferry restore") });
    expect(judge.databaseFinding({ path, engine: "sqlite", state: { quickCheck: ["ok"], schema: current } })).toMatchObject({ severity: "ok", message: "/d/mailferry.db: quick_check ok, schema 002_routing" });
    const newer = schemaStatus(["001_initial", "002_routing", "003_next"], ["001_initial", "002_routing"]);
    expect(judge.databaseFinding({ path, engine: "sqlite", state: { quickCheck: ["ok"], schema: newer } })).toMatchObject({ severity: "error", message: expect.stringContaining("database schema 003_next is newer") });
    const older = schemaStatus(["001_initial"], ["001_initial", "002_routing"]);
    expect(judge.databaseFinding({ path, engine: "sqlite", state: { quickCheck: ["ok"], schema: older } }).message).toContain("1 migration(s) to apply at the next start");
  });

  test("database on PostgreSQL: connected with its schema, pending migrations, no connection", () => {
    const path = "postgres://mailferry@db.internal:5432/mailferry";
    const current = schemaStatus(["001_initial", "002_routing"], ["001_initial", "002_routing"]);
    expect(judge.databaseFinding({ path, engine: "postgresql", state: { quickCheck: null, schema: current } })).toMatchObject({ severity: "ok", message: `${path}: connected, schema 002_routing` });
    const older = schemaStatus(["001_initial"], ["001_initial", "002_routing"]);
    expect(judge.databaseFinding({ path, engine: "postgresql", state: { quickCheck: null, schema: older } }).message).toContain("1 migration(s) to apply at the next start (a pg_dump is taken first when pg_dump is on PATH)");
    const refused = judge.databaseFinding({ path, engine: "postgresql", state: { failed: `cannot use the PostgreSQL database ${path} ([database] url): connection refused` } });
    expect(refused).toMatchObject({ severity: "error", message: expect.stringContaining(path), fix: expect.stringContaining("MAILFERRY_DATABASE_URL") });
  });

  test("certificate: expired, not yet valid, expiring soon, wrong name, fine", () => {
    const cert = (validFrom: number, validTo: number, coversHostname = true) => ({ validFrom, validTo, coversHostname, names: "DNS:mx.example.com" });
    const facts = (c: judge.CertificateFacts["cert"], source: judge.CertificateFacts["source"] = "configured"): judge.CertificateFacts => ({ path: "/etc/mx.pem", source, hostname: "mx.example.com", now: NOW, cert: c });
    expect(judge.certificateFinding(facts(cert(NOW - 90 * DAY, NOW - DAY)))).toMatchObject({ severity: "error", message: "/etc/mx.pem expired on 2026-05-31" });
    expect(judge.certificateFinding(facts(cert(NOW + DAY, NOW + 90 * DAY))).severity).toBe("error");
    expect(judge.certificateFinding(facts(cert(NOW - DAY, NOW + 5 * DAY)))).toMatchObject({ severity: "warning", message: "/etc/mx.pem expires in 5 days (2026-06-06)" });
    expect(judge.certificateFinding(facts(cert(NOW - DAY, NOW + 60 * DAY, false))).severity).toBe("error");
    expect(judge.certificateFinding(facts(cert(NOW - DAY, NOW + 60 * DAY, false), "self-signed"))).toMatchObject({ severity: "warning", fix: expect.stringContaining("restart mailferry to make a new one") });
    expect(judge.certificateFinding(facts(cert(NOW - DAY, NOW + 60 * DAY), "self-signed"))).toMatchObject({ severity: "ok", message: "/etc/mx.pem (self-signed): valid until 2026-07-31 (60 days), names mx.example.com" });
    expect(judge.certificateFinding(facts(null, "self-signed")).severity).toBe("warning");
    // ACME: not issued yet, or expiring although mailferry renews by itself: look at the renewals.
    expect(judge.certificateFinding(facts(null, "acme"))).toMatchObject({ severity: "warning", message: "no ACME certificate issued yet (/etc/mx.pem); the self-signed one serves meanwhile" });
    expect(judge.certificateFinding(facts(cert(NOW - DAY, NOW + 5 * DAY), "acme")).fix).toContain("acme.* errors");
    expect(judge.certificateFinding(facts(cert(NOW - DAY, NOW + 60 * DAY), "acme")).message).toBe("/etc/mx.pem (acme): valid until 2026-07-31 (60 days), names mx.example.com");
    expect(judge.certificateFinding(facts({ failed: "ENOENT" })).severity).toBe("error");
  });

  test("disk space thresholds and the exit code", () => {
    expect(judge.diskFinding("/d", judge.DISK_ERROR_BYTES - 1).severity).toBe("error");
    expect(judge.diskFinding("/d", judge.DISK_WARNING_BYTES - 1).severity).toBe("warning");
    expect(judge.diskFinding("/d", judge.DISK_WARNING_BYTES).severity).toBe("ok");
    const ok = judge.diskFinding("/d", judge.DISK_WARNING_BYTES);
    expect(judge.doctorExitCode([ok, judge.diskFinding("/d", judge.DISK_WARNING_BYTES - 1)])).toBe(0);
    expect(judge.doctorExitCode([ok, judge.diskFinding("/d", 0)])).toBe(1);
  });
});

describe("mailferry doctor", () => {
  let dns: DnsServer;
  let sink: Sink;
  let live: TestMailferry;
  const scratch = mkdtempSync(join(tmpdir(), "mailferry-doctor-test-"));

  beforeAll(async () => {
    sink = await startSink({ host: "127.0.0.1" });
    // The outbound probe asks DNS for gmail.com's MX: here the test DNS server names the sink.
    dns = await startDnsServer({ [TEST_HOSTNAME]: { A: ["127.0.0.1"] }, "gmail.com": { MX: [{ priority: 5, exchange: "mx.probe.test" }] }, "mx.probe.test": { A: ["127.0.0.1"] } });
    live = await startMailferry({ dns });
  });
  afterAll(async () => {
    await live.stop();
    await sink.close();
    await dns.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const doctor = (env: Record<string, string> = {}, args: string[] = []) =>
    run([...CLI, "doctor", ...args], {
      cwd: scratch,
      env: {
        MAILFERRY_DATA_DIR: live.dataDir,
        MAILFERRY_HOSTNAME: TEST_HOSTNAME,
        MAILFERRY_DNS_SERVERS: dns.address,
        MAILFERRY_DNS_TIMEOUT: "1s",
        MAILFERRY_SMTP_PORT: String(live.smtpPort),
        MAILFERRY_HTTP_PORT: new URL(live.httpUrl).port,
        MAILFERRY_OUTBOUND_PORT: String(sink.port),
        MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
        ...env,
      },
    });
  const lines = (stdout: string) => stdout.split("\n").filter((l) => /^[✓!✗] /.test(l));

  test("a healthy instance: ✓ for every check (the clock may only warn), exit 0", async () => {
    const result = await doctor();
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const found = lines(result.stdout);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^✓ SMTP port: 127\\.0\\.0\\.1:${live.smtpPort} is answered by the running mailferry`)),
        expect.stringMatching(/^✓ HTTP port: .* is answered by the running mailferry/),
        expect.stringMatching(new RegExp(`^✓ outbound SMTP: 127\\.0\\.0\\.1:${sink.port} \\(MX of gmail\\.com: mx\\.probe\\.test\\) answered: 220 `)),
        `✓ DNS: ${dns.address} answers: ${TEST_HOSTNAME} A 127.0.0.1`,
        expect.stringMatching(/^✓ data dir: .*: writable, owned by uid \d+, mode 0700$/),
        expect.stringMatching(/^✓ database: .*mailferry\.db: quick_check ok, schema \d{3}_\w+$/),
        expect.stringMatching(/^✓ certificate: .*selfsigned\.crt \(self-signed\): valid until/),
        expect.stringMatching(/^✓ disk space: \d+ MiB free/),
      ]),
    );
    expect(found.filter((l) => !l.startsWith("✓")).every((l) => l.startsWith("! clock"))).toBe(true);
    expect(result.stdout).toMatch(/\d+ ok, [01] warnings, 0 errors\n$/);
  });

  test("--json: the same findings for machines", async () => {
    const json = await doctor({ MAILFERRY_SMTP_PORT: "0" }, ["--json"]);
    expect(json.exitCode).toBe(0);
    const report = JSON.parse(json.stdout) as { ok: boolean; findings: judge.Finding[] };
    expect(report.ok).toBe(true);
    expect(report.findings.map((f) => f.check)).toEqual(["SMTP port", "HTTP port", "outbound SMTP", "DNS", "clock", "data dir", "database", "certificate", "disk space"]);
    expect(report.findings.find((f) => f.check === "SMTP port")).toEqual({ check: "SMTP port", severity: "ok", message: "smtp.port is 0: a free port is picked at start" });
  });

  test("outbound port 25 unreachable: a warning with the fix, still exit 0", async () => {
    const closed = await freePort();
    const result = await doctor({ MAILFERRY_OUTBOUND_PORT: String(closed) });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`! outbound SMTP: 127.0.0.1:${closed} (MX of gmail.com: mx.probe.test) refused the connection\n    fix: many VPS providers block outbound port 25`);
  });

  test("a world-readable data dir: ✗ with chmod, exit 1", async () => {
    chmodSync(live.dataDir, 0o755);
    try {
      const result = await doctor();
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toContain(`✗ data dir: ${live.dataDir} is readable by every user (mode 0755): it holds the keys and the database\n    fix: chmod o-rwx ${live.dataDir}`);
    } finally {
      chmodSync(live.dataDir, 0o700);
    }
  });

  test("an expired certificate: ✗, exit 1", async () => {
    const expired = certificateValidBetween(TEST_HOSTNAME, new Date(Date.now() - 100 * 86_400_000), new Date(Date.now() - 86_400_000));
    writeFileSync(join(scratch, "expired.crt"), expired.cert);
    writeFileSync(join(scratch, "expired.key"), expired.key);
    const result = await doctor({ MAILFERRY_TLS_CERT: join(scratch, "expired.crt"), MAILFERRY_TLS_KEY: join(scratch, "expired.key") });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`✗ certificate: ${join(scratch, "expired.crt")} expired on \\d{4}-\\d\\d-\\d\\d\\n    fix: renew it`));
  });

  test("the DNS server down: ✗ for it, outbound 'could not check', exit 1", async () => {
    const gone = await startDnsServer({});
    await gone.close();
    const result = await doctor({ MAILFERRY_DNS_SERVERS: gone.address });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`✗ DNS: ${gone.address.replace(/\./g, "\\.")} did not answer the query for ${TEST_HOSTNAME.replace(/\./g, "\\.")} A \\(E[A-Z]+\\)`));
    expect(result.stdout).toContain("! outbound SMTP: could not check: MX of gmail.com:");
  });

  test("the SMTP port taken by another program: ✗ naming the setting, exit 1", async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const taken = (squatter.address() as net.AddressInfo).port;
    try {
      const result = await doctor({ MAILFERRY_SMTP_PORT: String(taken), MAILFERRY_HTTP_PORT: String(await freePort()) });
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toContain(`✗ SMTP port: 127.0.0.1:${taken} is in use by another program\n    fix: stop it`);
      expect(result.stdout).toMatch(/✓ HTTP port: 127\.0\.0\.1:\d+ can be bound/);
    } finally {
      squatter.close();
    }
  });
});

describe("mailferry doctor on PostgreSQL ([database] url)", () => {
  let postgres: Postgres;
  const scratch = mkdtempSync(join(tmpdir(), "mailferry-doctor-pg-test-"));
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await postgres?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** The database finding of `doctor --json` with MAILFERRY_DATABASE_URL=url, and the exit code. */
  const databaseFinding = async (url: string) => {
    const result = await run([...CLI, "doctor", "--json"], { cwd: scratch, env: { MAILFERRY_DATA_DIR: join(scratch, "data"), MAILFERRY_DATABASE_URL: url, MAILFERRY_SMTP_PORT: "0", MAILFERRY_HTTP_PORT: "0", MAILFERRY_DNS_SERVERS: "127.0.0.1:9", MAILFERRY_DNS_TIMEOUT: "1s" } });
    const report = JSON.parse(result.stdout) as { findings: judge.Finding[] };
    return { finding: report.findings.find((f) => f.check === "database")!, stdout: result.stdout, exitCode: result.exitCode };
  };

  test("a migrated database: ✓ connected with its schema; one migration missing: pending, a pg_dump first; a newer one: ✗", async () => {
    const url = await postgres.createDatabase();
    const store = await openDatabase(url);
    const latest = Object.keys(migrations).at(-1)!;
    try {
      expect((await databaseFinding(url)).finding).toEqual({ check: "database", severity: "ok", message: `${url}: connected, schema ${latest}` });
      // As if this database were left by the previous version: its newest migration not applied.
      await sql`DELETE FROM kysely_migration WHERE name = ${latest}`.execute(store.db);
      expect((await databaseFinding(url)).finding.message).toContain("1 migration(s) to apply at the next start (a pg_dump is taken first when pg_dump is on PATH)");
      // As if a newer mailferry had migrated it.
      await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('999_from_the_future', '2099-01-01T00:00:00.000Z')`.execute(store.db);
      const newer = await databaseFinding(url);
      expect(newer.exitCode).toBe(1);
      expect(newer.finding).toMatchObject({ severity: "error", message: expect.stringContaining("database schema 999_from_the_future is newer than this mailferry") });
    } finally {
      await store.close();
    }
  });

  test("a new, empty database: ✓ connected, schema (empty)", async () => {
    const url = await postgres.createDatabase();
    expect((await databaseFinding(url)).finding).toMatchObject({ severity: "ok", message: `${url}: connected, schema (empty)` });
  });

  test("no PostgreSQL there: ✗ naming the server and database, never the password, exit 1", async () => {
    const port = await freePort();
    const { finding, stdout, exitCode } = await databaseFinding(`postgres://mailferry:s3cret-pw@127.0.0.1:${port}/maildb`);
    expect(exitCode).toBe(1);
    expect(finding).toMatchObject({ severity: "error", message: expect.stringContaining(`cannot use the PostgreSQL database postgres://mailferry@127.0.0.1:${port}/maildb`), fix: expect.stringContaining("[database] url") });
    expect(stdout).not.toContain("s3cret-pw");
  });
});
