// `mailferry restore <dir>`: every check first (the backup is whole and usable,
// no server runs on the data dir), then the backup is copied next to the data
// dir's contents and swapped in by renames; the old contents are kept in
// `<data>/backups/pre-restore-<time>/`. On PostgreSQL, pg_restore then replaces
// the database's contents with the backup's pg_dump. Any failure puts everything back.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { lockHolder } from "../store/lock.ts";
import { BACKUPS_DIR, fileTimestamp } from "../store/snapshot.ts";
import { PG_DUMP_FILE, pgRestore } from "../store/pg-dump.ts";
import { backupProblems, inspectBackup } from "./check.ts";
import type { BackupSource } from "./create.ts";
import { copyInto, digest } from "./files.ts";
import type { Manifest } from "./manifest.ts";

export interface RestoreResult {
  manifest: Manifest;
  /** Where the data dir's previous contents went, or null when it was empty. */
  movedAside: string | null;
}

export async function restoreBackup({ dataDir, databaseUrl }: BackupSource, backupDir: string, now = new Date()): Promise<RestoreResult> {
  const facts = await inspectBackup(backupDir);
  const problems = backupProblems(facts);
  if (problems.length) throw new Error(`backup ${backupDir} cannot be restored (nothing was changed):\n  ${problems.join("\n  ")}`);
  const manifest = facts.manifest as Manifest;
  const mismatch = databaseMismatch(manifest, databaseUrl);
  if (mismatch) throw new Error(`${mismatch} (nothing was changed)`);
  const holder = existsSync(dataDir) ? lockHolder(dataDir) : null;
  if (holder) throw new Error(`mailferry (pid ${holder.pid}) is running on ${dataDir}; stop it first (e.g. systemctl stop mailferry), then restore (nothing was changed)`);

  const created = [dataDir, join(dataDir, BACKUPS_DIR)].filter((dir) => !existsSync(dir));
  const stamp = fileTimestamp(now);
  // Staged inside the data dir, so the swap below is renames on one file system.
  const staging = join(dataDir, BACKUPS_DIR, `restoring-${stamp}`);
  const aside = join(dataDir, BACKUPS_DIR, `pre-restore-${stamp}`);
  const moves: [from: string, to: string][] = [];
  const move = (from: string, to: string) => {
    renameSync(from, to);
    moves.push([from, to]);
  };
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  try {
    // A pg_dump goes into PostgreSQL, not into the data dir.
    for (const file of manifest.files.filter((f) => f.path !== PG_DUMP_FILE)) {
      copyInto(backupDir, staging, file.path);
      if ((await digest(staging, file.path)).sha256 !== file.sha256) throw new Error(`copying ${file.path} to ${staging} changed it; is the disk failing?`);
    }
    const current = readdirSync(dataDir).filter((name) => name !== BACKUPS_DIR);
    if (current.length) mkdirSync(aside, { mode: 0o700 });
    for (const name of current) move(join(dataDir, name), join(aside, name));
    for (const name of readdirSync(staging)) move(join(staging, name), join(dataDir, name));
    // Last, in one transaction: when it fails the database is unchanged and the renames are undone.
    if (databaseUrl) await pgRestore(databaseUrl, join(backupDir, PG_DUMP_FILE));
    rmSync(staging, { recursive: true });
    return { manifest, movedAside: current.length ? aside : null };
  } catch (err) {
    throw undo(err as Error, moves, [staging, aside, ...created.reverse()]);
  }
}

/** Why this backup's database cannot go where the configuration keeps it, or null. */
function databaseMismatch(manifest: Manifest, databaseUrl: string | null): string | null {
  if (manifest.database === "postgresql" && !databaseUrl) return "the backup holds a PostgreSQL database (a pg_dump): set [database] url (MAILFERRY_DATABASE_URL) to the database to restore it into";
  if (manifest.database === "sqlite" && databaseUrl) return "the backup holds a SQLite database, and [database] url is set: restore it without [database] url";
  return null;
}

/** Reverses the renames made so far and removes what the restore made; the error says if that failed too. */
function undo(err: Error, moves: [string, string][], made: string[]): Error {
  const stuck: string[] = [];
  for (const [from, to] of moves.reverse()) {
    try {
      renameSync(to, from);
    } catch {
      stuck.push(`${to} (belongs at ${from})`);
    }
  }
  if (stuck.length) return new Error(`restore failed: ${err.message}; and could not move back: ${stuck.join(", ")}`);
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  return new Error(`restore failed, nothing was changed: ${err.message}`);
}
