// The server's claim on its data dir: `<data>/mailferry.lock` holds the pid
// (and, on Linux, the process start time) of the running `serve`, so restore
// can tell a live server from a stale file left by a crash, and a second
// server cannot start on the same directory.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const LOCK_FILE = "mailferry.lock";

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat), or null where there is no /proc. */
  started: number | null;
}

export interface ServerLock {
  release(): void;
}

/** The live process holding the data dir, or null when none does (no lock file, or a stale one). */
export function lockHolder(dataDir: string): LockHolder | null {
  let holder: LockHolder;
  try {
    holder = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), "utf8")) as LockHolder;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    // Unreadable or half-written: only a live server could be writing it, so say so rather than guess.
    throw new Error(`cannot read ${join(dataDir, LOCK_FILE)}: ${(err as Error).message}; remove it if no mailferry is running on this data dir`);
  }
  return isRunning(holder) ? holder : null;
}

/** Claims the data dir for this process; refuses while another live server holds it. */
export function acquireServerLock(dataDir: string): ServerLock {
  const path = join(dataDir, LOCK_FILE);
  const content = JSON.stringify({ pid: process.pid, started: processStart(process.pid) } satisfies LockHolder) + "\n";
  const claim = () => writeFileSync(path, content, { mode: 0o644, flag: "wx" });
  try {
    claim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const holder = lockHolder(dataDir);
    if (holder) throw new Error(`another mailferry (pid ${holder.pid}) is running on ${dataDir}; stop it first`);
    rmSync(path, { force: true }); // stale: its server is gone
    claim();
  }
  return {
    release() {
      // Only our own claim: a restore may have moved the directory's contents aside meanwhile.
      try {
        if (readFileSync(path, "utf8") === content) rmSync(path);
      } catch {
        // already gone
      }
    },
  };
}

function isRunning({ pid, started }: LockHolder): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive, but another user's process.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // A pid reused by an unrelated process after a crash has another start time.
  const now = processStart(pid);
  return started === null || now === null || now === started;
}

function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at field 3; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const value = Number(fields[19]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}
