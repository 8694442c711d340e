// Backup and restore as an operator runs them: `mailferry backup` as a real
// process on the data dir of a server that is forwarding mail and being
// changed, then `mailferry restore` into a new data dir, and every reason a
// restore must refuse, each leaving the data dir exactly as it was.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addAlias, listAliases } from "../src/store/aliases.ts";
import { openStore } from "../src/store/db.ts";
import { addDomain, listDomains } from "../src/store/domains.ts";
import { LOCK_FILE } from "../src/store/lock.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry } from "./support/mailferry.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { sendMail } from "./support/smtp-client.ts";
import { hashTree } from "./support/files.ts";
import { CLI, run } from "./support/smoke.ts";
import { migrations } from "../src/store/migrations/index.ts";

let dns: DnsServer;
let sink: Sink;
const scratch = mkdtempSync(join(tmpdir(), "mailferry-backup-test-"));
const dirs = { n: 0 };
const newDir = (name: string) => join(scratch, `${name}-${++dirs.n}`);

const mf = (dataDir: string, args: string[]) => run([...CLI, ...args], { cwd: scratch, env: { MAILFERRY_DATA_DIR: dataDir, MAILFERRY_DNS_SERVERS: dns.address } });
const env = () => ({ MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true" });

/** Exact alias names of a data dir's database, in creation order. */
async function aliasNames(dataDir: string): Promise<{ domains: string[]; aliases: string[] }> {
  const store = await openStore(join(dataDir, "mailferry.db"));
  try {
    return { domains: (await listDomains(store.db)).map((d) => d.name), aliases: (await listAliases(store.db)).map((a) => `${a.pattern}@${a.domain}`) };
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.1" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.1"] } });
});
afterAll(async () => {
  await sink.close();
  await dns.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("backup of a live server", () => {
  test("taken while mail flows and aliases are added, restored into a new data dir: consistent, complete, same keys", async () => {
    const live = await startMailferry({ dns, dataDir: newDir("live"), domains: ["load.test"], aliases: { "load.test": "forward-email=hello:user@dest.test" }, env: env() });
    const backupDir = newDir("snapshot");
    const restored = newDir("restored");
    try {
      const db = live.appliance.store.db;
      let stop = false;
      let sent = 0;
      const added: string[] = ["hello@load.test"];
      const mail = (async () => {
        while (!stop) {
          await sendMail(live.smtpPort, { from: "someone@sender.test", to: "hello@load.test", subject: `load ${sent}` });
          sent++;
        }
      })();
      const changes = (async () => {
        for (let i = 0; !stop; i++) {
          // A new domain now and then (each makes a DKIM key), aliases in between.
          const domain = `load${Math.floor(i / 10)}.test`;
          if (i % 10 === 0) await addDomain(db, domain);
          await addAlias(db, domain, { matcher: "exact", pattern: `a${i}`, recipients: ["user@dest.test"] });
          added.push(`a${i}@${domain}`);
        }
      })();
      while (sent < 3 || added.length < 25) await Bun.sleep(20);

      const before = added.length;
      const backup = await mf(live.dataDir, ["backup", backupDir]);
      const after = added.length;
      stop = true;
      await Promise.all([mail, changes]);

      expect(backup.stderr).toBe("");
      expect(backup.exitCode).toBe(0);
      expect(backup.stdout).toContain(`wrote ${join(backupDir, "mailferry.db")}`);
      expect(backup.stdout).toContain(`wrote ${join(backupDir, "srs.key")}`);
      expect(backup.stdout).toContain(`wrote ${join(backupDir, "manifest.json")}`);
      const manifest = JSON.parse(readFileSync(join(backupDir, "manifest.json"), "utf8"));
      expect(manifest.schema_version).toBe(Object.keys(migrations).at(-1)!);
      const listed = manifest.files.map((f: { path: string }) => f.path);
      expect(listed).toEqual(expect.arrayContaining(["mailferry.db", "srs.key", "tls/selfsigned.crt", "tls/selfsigned.key", "verify.key"]));
      expect(listed).not.toContain("mailferry.lock");
      expect(statSync(join(backupDir, "srs.key")).mode & 0o777).toBe(0o600);

      const restore = await mf(restored, ["restore", backupDir]);
      expect(restore.stderr).toBe("");
      expect(restore.exitCode).toBe(0);
      expect(restore.stdout).toContain(`restored ${listed.length} files into ${restored}`);

      // A snapshot is one instant: every alias added before the backup started, then a
      // prefix of those added while it ran, never a gap.
      const { domains, aliases } = await aliasNames(restored);
      expect(aliases.length).toBeGreaterThanOrEqual(before);
      expect(aliases.length).toBeLessThanOrEqual(after);
      expect(aliases).toEqual(added.slice(0, aliases.length));
      // A domain may have been added just before the snapshot and its first alias just after.
      const aliasDomains = [...new Set(aliases.map((a) => a.split("@")[1]!))];
      expect(domains).toEqual(expect.arrayContaining(aliasDomains));
      expect(domains.length).toBeLessThanOrEqual(aliasDomains.length + 1);

      for (const key of ["srs.key", "verify.key", "tls/selfsigned.crt", "tls/selfsigned.key"]) {
        expect(readFileSync(join(restored, key))).toEqual(readFileSync(join(live.dataDir, key)));
      }
      const check = new Database(join(restored, "mailferry.db"), { readonly: true });
      expect(check.query("PRAGMA integrity_check").all()).toEqual([{ integrity_check: "ok" }]);
      // The mail log was being written too: the snapshot holds the deliveries logged before it.
      expect((check.query("SELECT count(*) AS n FROM events WHERE stage = 'delivery'").get() as { n: number }).n).toBeGreaterThan(0);
      check.close();
    } finally {
      await live.stop();
    }

    // The restored data dir runs: it forwards with the restored aliases.
    const again = await startMailferry({ dns, dataDir: restored, env: env() });
    try {
      const received = sink.messages.length;
      await sendMail(again.smtpPort, { from: "someone@sender.test", to: "a0@load0.test", subject: "after restore" });
      expect(sink.messages.length).toBe(received + 1);
      expect(sink.messages.at(-1)!.rcptTo).toEqual(["user@dest.test"]);
    } finally {
      await again.stop();
    }
  });

  test("backup refuses a target that is not empty, or inside the data dir", async () => {
    const live = await startMailferry({ dns, dataDir: newDir("live"), domains: ["kept.test"] });
    try {
      const target = newDir("full");
      cpSync(join(live.dataDir, "srs.key"), join(target, "something"));
      const full = await mf(live.dataDir, ["backup", target]);
      expect(full.exitCode).toBe(1);
      expect(full.stderr).toContain(`backup target ${target} is not empty`);
      expect(readdirSync(target)).toEqual(["something"]);

      const inside = await mf(live.dataDir, ["backup", join(live.dataDir, "snap")]);
      expect(inside.exitCode).toBe(1);
      expect(inside.stderr).toContain("is inside the data dir");
      expect(existsSync(join(live.dataDir, "snap"))).toBe(false);

      // …except under backups/, which backups never copy. Links are not followed, and said so.
      symlinkSync("/etc/hostname", join(live.dataDir, "a-link"));
      const nightly = await mf(live.dataDir, ["backup", join(live.dataDir, "backups", "nightly")]);
      expect(nightly.exitCode).toBe(0);
      expect(nightly.stderr).toBe(`skipped ${join(live.dataDir, "a-link")}: not a regular file\n`);
      expect(existsSync(join(live.dataDir, "backups", "nightly", "a-link"))).toBe(false);
      expect((await mf(live.dataDir, ["backup"])).exitCode).toBe(2);

      // A data dir the server never ran on has no SRS key yet: its backup could not be restored.
      const unserved = newDir("unserved");
      mkdirSync(unserved);
      await (await openStore(join(unserved, "mailferry.db"))).close();
      const early = await mf(unserved, ["backup", newDir("early")]);
      expect(early.exitCode).toBe(1);
      expect(early.stderr).toContain(`no srs.key in ${unserved}, which a restore requires`);
    } finally {
      await live.stop();
    }
  });
});

describe("restore", () => {
  // A good backup of a stopped instance, and a stopped instance to restore over.
  let good: string;
  let target: string;
  beforeAll(async () => {
    const source = await startMailferry({ dns, dataDir: newDir("source"), domains: ["backed-up.test"], aliases: { "backed-up.test": "forward-email=old:user@dest.test" } });
    await source.stop();
    good = newDir("good");
    expect((await mf(source.dataDir, ["backup", good])).exitCode).toBe(0);
    const current = await startMailferry({ dns, dataDir: newDir("current"), domains: ["current.test"] });
    await current.stop();
    target = current.dataDir;
  });

  /** A copy of the good backup with `damage` done to it. */
  function damaged(damage: (dir: string, manifest: { files: { path: string; size: number; sha256: string }[] }) => void): string {
    const dir = newDir("damaged");
    cpSync(good, dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    damage(dir, manifest);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    return dir;
  }
  /** Makes the manifest agree with the file as it is now, as a careful forger would. */
  const relist = (dir: string, manifest: { files: { path: string; size: number; sha256: string }[] }, path: string) => {
    const entry = manifest.files.find((f) => f.path === path)!;
    const bytes = readFileSync(join(dir, path));
    entry.size = bytes.length;
    entry.sha256 = createHash("sha256").update(bytes).digest("hex");
  };
  const flipBytes = (file: string, offset: number, count: number) => {
    const bytes = readFileSync(file);
    for (let i = offset; i < offset + count; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(file, bytes);
  };

  async function expectRefused(backup: string, message: RegExp | string) {
    const before = hashTree(target);
    const result = await mf(target, ["restore", backup]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe("");
    expect(hashTree(target)).toEqual(before);
    expect(existsSync(join(target, "backups"))).toBe(false);
  }

  test("a database whose bytes were changed: checksum mismatch", async () => {
    await expectRefused(
      damaged((dir) => flipBytes(join(dir, "mailferry.db"), 8192, 64)),
      "mailferry.db does not match its checksum in manifest.json",
    );
  });

  test("a corrupted database with a manifest made to match: integrity check", async () => {
    const dir = damaged((d, manifest) => {
      // Wreck whole b-tree pages in the middle of the file.
      const db = join(d, "mailferry.db");
      flipBytes(db, 4096 * 3, 4096 * 4);
      relist(d, manifest, "mailferry.db");
    });
    await expectRefused(dir, /mailferry\.db (fails the integrity check|cannot be read)/);
  });

  test("a missing key", async () => {
    const dir = damaged((d, manifest) => {
      rmSync(join(d, "srs.key"));
      manifest.files = manifest.files.filter((f) => f.path !== "srs.key");
    });
    await expectRefused(dir, "the backup has no srs.key");
    await expectRefused(
      damaged((d) => rmSync(join(d, "srs.key"))),
      "srs.key is listed in manifest.json but missing",
    );
  });

  test("a tampered manifest checksum", async () => {
    await expectRefused(
      damaged((_d, manifest) => (manifest.files.find((f) => f.path === "srs.key")!.sha256 = "0".repeat(64))),
      "srs.key does not match its checksum",
    );
    await expectRefused(
      damaged((_d, manifest) => manifest.files.push({ path: "../escape", size: 1, sha256: "0".repeat(64) })),
      /manifest\.json is not a mailferry backup manifest: files\.\d+\.path: must be a relative path inside the backup/,
    );
    await expectRefused(newDir("not-a-backup"), "no manifest.json in");
  });

  test("a backup with a newer schema than this binary knows", async () => {
    const dir = damaged((d, manifest) => {
      const db = new Database(join(d, "mailferry.db"));
      db.run("INSERT INTO kysely_migration (name, timestamp) VALUES ('999_future', '2099-01-01T00:00:00.000Z')");
      db.close();
      relist(d, manifest, "mailferry.db");
    });
    await expectRefused(dir, /database schema 999_future is newer than this mailferry \S+ knows; upgrade mailferry or restore a backup/);
  });

  test("a server running on the data dir", async () => {
    const running = await startMailferry({ dns, dataDir: newDir("running"), domains: ["running.test"] });
    try {
      // The live database may change under a running server; everything else must not.
      const liveDb = (path: string) => path.startsWith("mailferry.db");
      const before = hashTree(running.dataDir, liveDb);
      const result = await mf(running.dataDir, ["restore", good]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`mailferry (pid ${process.pid}) is running on ${running.dataDir}; stop it first`);
      expect(hashTree(running.dataDir, liveDb)).toEqual(before);
      expect(existsSync(join(running.dataDir, "backups"))).toBe(false);
      expect((await aliasNames(running.dataDir)).domains).toEqual(["running.test"]);
    } finally {
      await running.stop();
    }
    // Stopped, the lock is gone and the same restore goes through.
    expect(existsSync(join(running.dataDir, LOCK_FILE))).toBe(false);
    expect((await mf(running.dataDir, ["restore", good])).exitCode).toBe(0);
  });

  test("over a stopped instance: its contents are kept in backups/pre-restore-*, a stale lock does not count", async () => {
    const dir = newDir("over");
    cpSync(target, dir, { recursive: true });
    const exited = Bun.spawn(["true"]);
    await exited.exited;
    // A crash leaves the lock behind; its pid is gone.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: exited.pid, started: null }));
    const before = hashTree(dir);

    const result = await mf(dir, ["restore", good]);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const [aside] = readdirSync(join(dir, "backups"));
    expect(aside).toMatch(/^pre-restore-\d{4}-\d\d-\d\dT[\d-]+\.\d{3}Z$/);
    expect(result.stdout).toContain(`moved the previous contents of ${dir} to ${join(dir, "backups", aside!)}`);
    expect(hashTree(join(dir, "backups", aside!))).toEqual(before);
    expect(hashTree(dir, (p) => p.startsWith("backups"))).toEqual(hashTree(good, (p) => p === "manifest.json"));
    expect(await aliasNames(dir)).toEqual({ domains: ["backed-up.test"], aliases: ["old@backed-up.test"] });
  });
});

describe("server lock", () => {
  test("a second server on the same data dir is refused; the first keeps running", async () => {
    const first = await startMailferry({ dns, dataDir: newDir("locked") });
    try {
      const err = await startMailferry({ dns, dataDir: first.dataDir }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(`another mailferry (pid ${process.pid}) is running on ${first.dataDir}; stop it first`);
      expect(JSON.parse(readFileSync(join(first.dataDir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
      expect((await fetch(`${first.httpUrl}healthz`)).status).toBe(200);
    } finally {
      await first.stop();
    }
  });
});
