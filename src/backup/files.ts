// What a backup holds besides the database: every regular file of the data
// dir, so files added by later versions (ACME state, tokens) are included
// without anyone having to remember this list.
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, createReadStream, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { DATABASE_FILE } from "../store/db.ts";
import { LOCK_FILE } from "../store/lock.ts";
import { BACKUPS_DIR } from "../store/snapshot.ts";

/** Never copied as files: the live database (snapshotted instead), the running server's lock, earlier backups. */
const EXCLUDED = new Set([DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`, `${DATABASE_FILE}-journal`, LOCK_FILE, BACKUPS_DIR]);

export interface DataFiles {
  /** Paths relative to the data dir, `/`-separated, sorted. */
  files: string[];
  /** Symlinks, sockets and the like, which a backup does not follow. */
  skipped: string[];
}

export function dataFiles(dataDir: string): DataFiles {
  const found: DataFiles = { files: [], skipped: [] };
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(dataDir, relative), { withFileTypes: true })) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (!relative && EXCLUDED.has(entry.name)) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) found.files.push(path);
      else found.skipped.push(path);
    }
  };
  walk("");
  found.files.sort();
  found.skipped.sort();
  return found;
}

export interface FileDigest {
  path: string;
  size: number;
  sha256: string;
}

/** Size and sha256 of `root/path`, streamed (the database may be large). */
export async function digest(root: string, path: string): Promise<FileDigest> {
  const full = join(root, path);
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
  return { path, size: lstatSync(full).size, sha256: hash.digest("hex") };
}

/** Copies `from/path` to `to/path` with its permissions (keys stay 0600), making private parent folders. */
export function copyInto(from: string, to: string, path: string): void {
  mkdirSync(dirname(join(to, path)), { recursive: true, mode: 0o700 });
  copyFileSync(join(from, path), join(to, path));
  chmodSync(join(to, path), lstatSync(join(from, path)).mode & 0o777);
}
