// Upgrades and downgrades of the database: a binary that finds migrations it
// does not know refuses before writing anything; one that finds migrations
// to apply copies the database first.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely, SqliteDialect } from "kysely";
import { Migrator } from "kysely/migration";
import { adapt, openStore } from "../src/store/db.ts";
import { migrations } from "../src/store/migrations/index.ts";
import { schemaStatus } from "../src/store/versions.ts";
import { VERSION } from "../src/version.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry } from "./support/mailferry.ts";
import { hashTree } from "./support/files.ts";
import { CLI, run } from "./support/smoke.ts";

let dns: DnsServer;
const scratch = mkdtempSync(join(tmpdir(), "mailferry-upgrade-test-"));
let n = 0;
const newDir = () => mkdtempSync(join(scratch, `d${++n}-`));
const LATEST = Object.keys(migrations).at(-1)!;
const PREVIOUS = Object.keys(migrations).slice(0, -1);

beforeAll(async () => {
  dns = await startDnsServer({});
});
afterAll(async () => {
  await dns.close();
  rmSync(scratch, { recursive: true, force: true });
});

const mf = (dataDir: string, args: string[]) =>
  run([...CLI, ...args], { cwd: scratch, env: { MAILFERRY_DATA_DIR: dataDir, MAILFERRY_DNS_SERVERS: dns.address, MAILFERRY_SMTP_PORT: "0", MAILFERRY_HTTP_PORT: "0", MAILFERRY_LOG_FORMAT: "json" } });

/** A data dir whose database the version before the latest migration left, with one domain. */
async function previousVersionDataDir(): Promise<string> {
  const dir = newDir();
  const raw = new Database(join(dir, "mailferry.db"), { create: true, strict: true });
  raw.run("PRAGMA journal_mode = WAL");
  const old = new Kysely<unknown>({ dialect: new SqliteDialect({ database: adapt(raw) }) });
  const earlier = Object.fromEntries(Object.entries(migrations).filter(([name]) => PREVIOUS.includes(name)));
  expect((await new Migrator({ db: old, provider: { getMigrations: async () => earlier } }).migrateToLatest()).error).toBeUndefined();
  raw.run("INSERT INTO domains (name, created_at, updated_at) VALUES ('before-upgrade.test', 1, 1)");
  await old.destroy();
  return dir;
}

describe("a database newer than this binary", () => {
  const message = (name: string) => `database schema ${name} is newer than this mailferry ${VERSION} knows; upgrade mailferry or restore a backup`;

  async function newerDataDir(): Promise<string> {
    const dir = newDir();
    const store = await openStore(join(dir, "mailferry.db"));
    store.sqlite.run("INSERT INTO kysely_migration (name, timestamp) VALUES ('999_from_the_future', '2099-01-01T00:00:00.000Z')");
    await store.close();
    return dir;
  }

  test("openStore refuses with the schema's name", async () => {
    const dir = await newerDataDir();
    const before = hashTree(dir);
    expect(await openStore(join(dir, "mailferry.db")).catch((e: Error) => e.message)).toBe(message("999_from_the_future"));
    expect(hashTree(dir)).toEqual(before);
  });

  test("serve and CLI commands exit 1 with the message and write nothing", async () => {
    const dir = await newerDataDir();
    const before = hashTree(dir);
    const serve = await mf(dir, ["serve"]);
    expect(serve.exitCode).toBe(1);
    expect(serve.stderr).toBe(`mailferry: ${message("999_from_the_future")}\n`);
    expect(serve.stdout).not.toContain("mailferry.ready");
    const list = await mf(dir, ["domain", "list"]);
    expect(list.exitCode).toBe(1);
    expect(list.stderr).toContain(message("999_from_the_future"));
    // Nothing written: no lock left behind, no backup, the database unchanged.
    expect(hashTree(dir)).toEqual(before);
  });
});

describe("an older database (an upgrade)", () => {
  test("is copied to backups/pre-migrate-<time>.db before migrating; the copy opens at the old schema", async () => {
    const dir = await previousVersionDataDir();
    const mf = await startMailferry({ dns, dataDir: dir });
    try {
      const logged = mf.logs.find((l) => l.event === "store.pre_migration_backup");
      expect(logged).toBeDefined();
      expect(logged!.pending).toEqual([LATEST]);
      const [copy] = readdirSync(join(dir, "backups"));
      expect(copy).toMatch(/^pre-migrate-\d{4}-\d\d-\d\dT[\d-]+\.\d{3}Z\.db$/);
      expect(logged!.file).toBe(join(dir, "backups", copy!));

      const old = new Database(join(dir, "backups", copy!), { readonly: true });
      expect(old.query("PRAGMA integrity_check").all()).toEqual([{ integrity_check: "ok" }]);
      expect(schemaStatus((old.query("SELECT name FROM kysely_migration").all() as { name: string }[]).map((r) => r.name)).version).toBe(PREVIOUS.at(-1)!);
      expect(old.query("SELECT name FROM domains").all()).toEqual([{ name: "before-upgrade.test" }]);
      old.close();
      // …and the live one is migrated, its data kept.
      expect(mf.appliance.store.sqlite!.query("SELECT name FROM kysely_migration ORDER BY name DESC LIMIT 1").get()).toEqual({ name: LATEST });
      expect(mf.appliance.store.sqlite!.query("SELECT name FROM domains").all()).toEqual([{ name: "before-upgrade.test" }]);
    } finally {
      await mf.stop();
    }
    // Up to date now: the next start copies nothing.
    const again = await startMailferry({ dns, dataDir: dir });
    await again.stop();
    expect(readdirSync(join(dir, "backups")).length).toBe(1);
  });

  test("a CLI command that migrates says where the copy is", async () => {
    const dir = await previousVersionDataDir();
    const list = await mf(dir, ["domain", "list"]);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toBe("before-upgrade.test\n");
    const [copy] = readdirSync(join(dir, "backups"));
    expect(list.stderr).toBe(`database backed up to ${join(dir, "backups", copy!)} before migrating (${LATEST})\n`);
  });

  test("a fresh database needs no copy", async () => {
    const dir = newDir();
    const store = await openStore(join(dir, "mailferry.db"));
    await store.close();
    expect(existsSync(join(dir, "backups"))).toBe(false);
  });
});
