// The data directory holds the DKIM private keys (in the database), the SRS and
// link-signing keys and the TLS key, so only its owner may read it: it is made
// 0700, and what is already there (./data of a checkout, a directory made by an
// older version or by hand) loses group and other access whenever mailferry
// opens it. Files made later are created 0600 (see openStore for the database).
import { chmodSync, lstatSync, mkdirSync, readdirSync, renameSync, type Stats, writeFileSync } from "node:fs";
import { join } from "node:path";

const GROUP_AND_OTHER = 0o077;

/** Makes the data directory when missing, then keeps it and its contents private to the owner. */
export function preparePrivateDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  restrictToOwner(dir);
}

/** Removes group and other permissions from `path` and, for a directory, from everything under it; symlinks are left alone. */
export function restrictToOwner(path: string): void {
  const stat = statOrNull(path);
  if (!stat || stat.isSymbolicLink()) return;
  if (stat.mode & GROUP_AND_OTHER) chmodOwned(path, stat.mode & 0o777 & ~GROUP_AND_OTHER);
  if (stat.isDirectory()) for (const name of readdirSync(path)) restrictToOwner(join(path, name));
}

function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    // Removed meanwhile (a running server rotates -wal/-shm and temporary files).
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

function chmodOwned(path: string, mode: number): void {
  try {
    chmodSync(path, mode);
  } catch (err) {
    // Another user's file (e.g. the service's data dir, read by an admin's CLI): doctor reports its mode.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") throw err;
  }
}

/** Writes `path` whole through a temporary file and a rename: a reader (another process) never sees it half written. */
export function writeReplacing(path: string, data: Buffer | string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}
