// Is a backup directory whole and usable by this binary? Facts are gathered
// first (manifest, what each file really is, the database's own checks),
// then one pure function says what is wrong with them.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pgDumpProblem } from "../store/pg-dump.ts";
import { REQUIRED_SECRET_FILES } from "../store/secrets.ts";
import { withReadOnlyDatabase } from "../store/snapshot.ts";
import { appliedMigrations, newerSchemaMessage, type SchemaStatus, schemaStatus } from "../store/versions.ts";
import { digest, type FileDigest } from "./files.ts";
import { databaseFileOf, MANIFEST_FILE, type Manifest, parseManifest } from "./manifest.ts";

export interface BackupFacts {
  /** The manifest, or why there is none. */
  manifest: Manifest | string;
  /** Each listed file as found in the backup, null when it is missing. */
  found: Record<string, FileDigest | null>;
  /** The backup database's integrity_check rows (a pg_dump: ["ok"] when pg_restore can read it) and schema, or why it could not be opened. */
  database: { integrity: string[]; schema: SchemaStatus } | { error: string } | null;
}

export async function inspectBackup(dir: string): Promise<BackupFacts> {
  const manifestPath = join(dir, MANIFEST_FILE);
  if (!existsSync(manifestPath)) return { manifest: `no ${MANIFEST_FILE} in ${dir}: not a mailferry backup`, found: {}, database: null };
  const manifest = parseManifest(readFileSync(manifestPath, "utf8"));
  if (typeof manifest === "string") return { manifest, found: {}, database: null };
  const found: BackupFacts["found"] = {};
  for (const file of manifest.files) found[file.path] = existsSync(join(dir, file.path)) ? await digest(dir, file.path) : null;
  const file = databaseFileOf(manifest);
  if (!found[file]) return { manifest, found, database: null };
  return { manifest, found, database: manifest.database === "postgresql" ? await inspectDump(join(dir, file), manifest.schema_version) : inspectDatabase(join(dir, file)) };
}

/** pg_restore reads the dump's table of contents; the schema is the one the manifest recorded at pg_dump time. */
async function inspectDump(path: string, schemaVersion: string | null): Promise<BackupFacts["database"]> {
  const problem = await pgDumpProblem(path);
  return problem ? { error: problem } : { integrity: ["ok"], schema: schemaStatus(schemaVersion ? [schemaVersion] : []) };
}

function inspectDatabase(path: string): BackupFacts["database"] {
  try {
    return withReadOnlyDatabase(path, (sqlite) => ({
      integrity: (sqlite.query("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((r) => r.integrity_check),
      schema: schemaStatus(appliedMigrations(sqlite)),
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Everything that makes the backup unfit to restore; empty when it is fine. */
export function backupProblems(facts: BackupFacts, required: string[] = REQUIRED_SECRET_FILES): string[] {
  const { manifest, found, database } = facts;
  if (typeof manifest === "string") return [manifest];
  const problems: string[] = [];
  for (const file of manifest.files) {
    const actual = found[file.path];
    if (!actual) problems.push(`${file.path} is listed in ${MANIFEST_FILE} but missing`);
    else if (actual.size !== file.size || actual.sha256 !== file.sha256) problems.push(`${file.path} does not match its checksum in ${MANIFEST_FILE} (changed or damaged)`);
  }
  const listed = new Set(manifest.files.map((f) => f.path));
  const file = databaseFileOf(manifest);
  for (const name of [file, ...required]) if (!listed.has(name)) problems.push(`the backup has no ${name}`);
  if (database && "error" in database) problems.push(`${file} cannot be read: ${database.error}`);
  else if (database) {
    if (database.integrity.join() !== "ok") problems.push(`${file} fails the integrity check: ${database.integrity.slice(0, 3).join("; ")}`);
    const newer = newerSchemaMessage(database.schema);
    if (newer) problems.push(newer);
  }
  return problems;
}
