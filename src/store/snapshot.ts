// Consistent copies of the live database: VACUUM INTO reads one snapshot
// (WAL readers never block the writer) and writes a compact standalone file.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** `<data>/backups/`: pre-migration and pre-restore copies; never itself part of a backup. */
export const BACKUPS_DIR = "backups";

/** Runs `fn` on a read-only handle (no migration, nothing written), closed afterwards. */
export function withReadOnlyDatabase<T>(path: string, fn: (sqlite: Database) => T): T {
  const sqlite = new Database(path, { readonly: true, strict: true });
  try {
    sqlite.run("PRAGMA busy_timeout = 5000");
    return fn(sqlite);
  } finally {
    sqlite.close();
  }
}

export function vacuumInto(sqlite: Database, file: string): void {
  sqlite.query("VACUUM INTO ?").run(file);
}

/** A name part that sorts by time and is valid in any file system, e.g. `2026-01-02T03-04-05.678Z`. */
export function fileTimestamp(date = new Date()): string {
  return date.toISOString().replaceAll(":", "-");
}

/** `<dataDir>/backups/`, made private on first use (it holds copies of keys and the database). */
export function backupsDir(dataDir: string): string {
  const dir = join(dataDir, BACKUPS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
