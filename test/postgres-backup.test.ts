// `mailferry backup` and `restore` with [database] url (docs/operations.md,
// "PostgreSQL"): the database is dumped with pg_dump -Fc next to the data
// dir's keys, and restored with pg_restore: a change made after the backup is
// gone after the restore. An upgrade dumps the database before it migrates.
// Against a private PostgreSQL (test/support/postgres.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import { Migrator } from "kysely/migration";
import { migrations } from "../src/store/migrations/index.ts";
import { bunSqlPool } from "../src/store/postgres.ts";
import { loadSecret, SRS_SECRET_FILE } from "../src/store/secrets.ts";
import { type Postgres, startPostgres } from "./support/postgres.ts";
import { CLI, run } from "./support/smoke.ts";

let postgres: Postgres;
let databaseUrl: string;
const scratch = mkdtempSync(join(tmpdir(), "mailferry-postgres-backup-"));
const dataDir = join(scratch, "data");

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  // The node's own key, as its first start makes it.
  mkdirSync(dataDir, { mode: 0o700 });
  loadSecret(dataDir, SRS_SECRET_FILE);
}, 120_000);

afterAll(async () => {
  await postgres?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const mf = (args: string[], env: Record<string, string> = {}) =>
  run([...CLI, ...args], { cwd: scratch, env: { MAILFERRY_DATA_DIR: dataDir, MAILFERRY_DATABASE_URL: databaseUrl, ...env }, timeoutMs: 60_000 });

async function domains(): Promise<string> {
  const result = await mf(["domain", "list"]);
  expect(result.exitCode).toBe(0);
  return result.stdout;
}

test("backup runs pg_dump and copies the keys; a change made afterwards is gone after restore (pg_restore)", async () => {
  expect((await mf(["domain", "add", "before.test"])).exitCode).toBe(0);
  const target = join(scratch, "backup-1");
  const backup = await mf(["backup", target]);
  expect(backup.stderr).toBe("");
  expect(backup.exitCode).toBe(0);
  expect(backup.stdout).toContain(`dumped the PostgreSQL database ${databaseUrl} with pg_dump -Fc into ${join(target, "mailferry.pgdump")}`);
  expect(statSync(join(target, "mailferry.pgdump")).mode & 0o777).toBe(0o600);
  expect(readFileSync(join(target, SRS_SECRET_FILE), "utf8")).toBe(readFileSync(join(dataDir, SRS_SECRET_FILE), "utf8"));
  expect(existsSync(join(target, "mailferry.db"))).toBe(false);
  const manifest = JSON.parse(readFileSync(join(target, "manifest.json"), "utf8")) as { database: string; files: { path: string }[] };
  expect(manifest.database).toBe("postgresql");
  expect(manifest.files.map((f) => f.path)).toEqual(expect.arrayContaining(["mailferry.pgdump", SRS_SECRET_FILE]));

  expect((await mf(["domain", "add", "after.test"])).exitCode).toBe(0);
  expect((await mf(["domain", "remove", "before.test"])).exitCode).toBe(0);
  expect(await domains()).toContain("after.test");

  const restore = await mf(["restore", target]);
  expect(restore.stderr).toBe("");
  expect(restore.exitCode).toBe(0);
  expect(restore.stdout).toContain(`restored the PostgreSQL database ${databaseUrl} from mailferry.pgdump with pg_restore`);
  const after = await domains();
  expect(after).toContain("before.test");
  expect(after).not.toContain("after.test");
}, 120_000);

test("a PostgreSQL backup is not restored into SQLite: without [database] url, restore refuses and changes nothing", async () => {
  const target = join(scratch, "backup-2");
  expect((await mf(["backup", target])).exitCode).toBe(0);
  const other = join(scratch, "sqlite-node");
  const result = await mf(["restore", target], { MAILFERRY_DATA_DIR: other, MAILFERRY_DATABASE_URL: "" });
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toContain("the backup holds a PostgreSQL database (a pg_dump): set [database] url");
  expect(existsSync(other)).toBe(false);
}, 60_000);

test("without pg_dump on PATH, backup says so and leaves no backup behind", async () => {
  const target = join(scratch, "backup-3");
  const result = await mf(["backup", target], { PATH: join(scratch, "empty-path") });
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toContain("pg_dump is not on PATH: install PostgreSQL's client tools");
  expect(existsSync(target)).toBe(false);
}, 60_000);

describe("an upgrade on PostgreSQL (a migration to apply)", () => {
  const latest = Object.keys(migrations).at(-1)!;

  /** A new database as the version before the latest migration left it. */
  async function previousVersionDatabase(): Promise<string> {
    const url = await postgres.createDatabase();
    const old = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: bunSqlPool(url, 1) }) });
    const earlier = Object.fromEntries(Object.entries(migrations).filter(([name]) => name !== latest));
    expect((await new Migrator({ db: old, provider: { getMigrations: async () => earlier } }).migrateToLatest()).error).toBeUndefined();
    await old.destroy();
    return url;
  }

  test("with pg_dump on PATH: dumped into backups/pre-migrate-<time>.pgdump first, and said where", async () => {
    const node = join(scratch, "upgrade-1");
    const result = await mf(["domain", "list"], { MAILFERRY_DATA_DIR: node, MAILFERRY_DATABASE_URL: await previousVersionDatabase() });
    expect(result.exitCode).toBe(0);
    const dumps = readdirSync(join(node, "backups"));
    expect(dumps).toEqual([expect.stringMatching(/^pre-migrate-\d{4}-\d\d-\d\dT[\d-]+\.\d{3}Z\.pgdump$/)]);
    expect(statSync(join(node, "backups", dumps[0]!)).size).toBeGreaterThan(0);
    expect(result.stderr).toContain(`database backed up to ${join(node, "backups", dumps[0]!)} before migrating (${latest})`);
  }, 60_000);

  test("without pg_dump: migrates, and says no copy was made", async () => {
    const node = join(scratch, "upgrade-2");
    const result = await mf(["domain", "list"], { MAILFERRY_DATA_DIR: node, MAILFERRY_DATABASE_URL: await previousVersionDatabase(), PATH: join(scratch, "empty-path") });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(`no copy of the database was made before migrating (${latest}): pg_dump is not on PATH`);
    expect(existsSync(join(node, "backups"))).toBe(false);
  }, 60_000);
});
