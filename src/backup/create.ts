// `mailferry backup <dir>`: an online snapshot of the data dir. The database
// is copied with VACUUM INTO (one consistent read transaction, safe while the
// server writes), or dumped with pg_dump when it is PostgreSQL; the other files
// as they are, and manifest.json lists them all.
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { DATABASE_FILE, postgresMigrations } from "../store/db.ts";
import { PG_DUMP_FILE, pgDump } from "../store/pg-dump.ts";
import { REQUIRED_SECRET_FILES } from "../store/secrets.ts";
import { BACKUPS_DIR, vacuumInto, withReadOnlyDatabase } from "../store/snapshot.ts";
import { appliedMigrations, schemaStatus } from "../store/versions.ts";
import { VERSION } from "../version.ts";
import { backupProblems, inspectBackup } from "./check.ts";
import { copyInto, dataFiles, digest } from "./files.ts";
import { MANIFEST_FILE, type Manifest } from "./manifest.ts";

export interface BackupResult {
  manifest: Manifest;
  /** Files of the data dir left out because they are not regular files. */
  skipped: string[];
}

/** What is backed up: the node's data dir, and the database in it or at [database] url. */
export interface BackupSource {
  dataDir: string;
  databaseUrl: string | null;
}

export async function createBackup({ dataDir, databaseUrl }: BackupSource, target: string, now = new Date()): Promise<BackupResult> {
  const dbPath = join(dataDir, DATABASE_FILE);
  if (!databaseUrl && !existsSync(dbPath)) throw new Error(`no database in ${dataDir}: nothing to back up (is the data dir right?)`);
  const missing = REQUIRED_SECRET_FILES.filter((file) => !existsSync(join(dataDir, file)));
  if (missing.length) throw new Error(`no ${missing.join(", ")} in ${dataDir}, which a restore requires: mailferry makes it on its first start; start it once, then back up`);
  refuseTarget(dataDir, target);
  const made = !existsSync(target);
  mkdirSync(target, { recursive: true, mode: 0o700 });
  try {
    const database = databaseUrl ? await dumpPostgres(databaseUrl, target) : snapshotSqlite(dbPath, target);
    const { files, skipped } = dataFiles(dataDir);
    for (const file of files) copyInto(dataDir, target, file);
    const digests = [];
    for (const file of [database.file, ...files]) digests.push(await digest(target, file));
    const manifest: Manifest = { format: 1, mailferry_version: VERSION, database: databaseUrl ? "postgresql" : "sqlite", schema_version: database.schema, created_at: now.toISOString(), files: digests };
    writeFileSync(join(target, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o600 });
    // The same checks a restore makes, so a backup that could not be restored fails now, not then.
    const problems = backupProblems(await inspectBackup(target));
    if (problems.length) throw new Error(`the backup would not restore: ${problems.join("; ")}`);
    return { manifest, skipped };
  } catch (err) {
    // Leave no half-written backup that looks like a real one.
    if (made) rmSync(target, { recursive: true, force: true });
    else for (const entry of readdirSync(target)) rmSync(join(target, entry), { recursive: true, force: true });
    throw err;
  }
}

interface SavedDatabase {
  /** Its file in the backup. */
  file: string;
  schema: string | null;
}

function snapshotSqlite(dbPath: string, target: string): SavedDatabase {
  withReadOnlyDatabase(dbPath, (source) => vacuumInto(source, join(target, DATABASE_FILE)));
  // Read from the copy: exactly the schema of what was saved.
  const schema = withReadOnlyDatabase(join(target, DATABASE_FILE), (copy) => schemaStatus(appliedMigrations(copy)).version);
  chmodSync(join(target, DATABASE_FILE), statSync(dbPath).mode & 0o777);
  return { file: DATABASE_FILE, schema };
}

/** pg_dump -Fc: one consistent snapshot while the nodes keep writing. The schema is read first; migrations run only at a start. */
async function dumpPostgres(url: string, target: string): Promise<SavedDatabase> {
  const schema = schemaStatus(await postgresMigrations(url)).version;
  await pgDump(url, join(target, PG_DUMP_FILE));
  return { file: PG_DUMP_FILE, schema };
}

function refuseTarget(dataDir: string, target: string): void {
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new Error(`backup target ${target} is not a directory`);
    if (readdirSync(target).length > 0) throw new Error(`backup target ${target} is not empty; choose a new or empty directory`);
  }
  // Inside the data dir, the next backup would copy this one (except under backups/, which is never copied).
  const inside = relative(resolve(dataDir), resolve(target));
  const underData = inside !== ".." && !inside.startsWith("../");
  if (underData && !(inside === BACKUPS_DIR || inside.startsWith(`${BACKUPS_DIR}/`))) {
    throw new Error(`backup target ${target} is inside the data dir; choose a directory outside it or under ${join(dataDir, BACKUPS_DIR)}`);
  }
}
