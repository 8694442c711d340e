// PostgreSQL's own backup tools, run as child processes: `pg_dump -Fc` (the
// custom format, compressed, which pg_restore reads) and `pg_restore`. They
// are in Debian's postgresql-client; mailferry never copies PostgreSQL's files
// itself (docs/operations.md, "PostgreSQL").
import { closeSync, openSync } from "node:fs";
import { withoutPassword } from "./postgres.ts";

/** The file a backup of a PostgreSQL database holds it in, next to the data dir's files. */
export const PG_DUMP_FILE = "mailferry.pgdump";

/** The tool's path when it is on PATH, else null. */
export function pgTool(name: "pg_dump" | "pg_restore"): string | null {
  return Bun.which(name);
}

/** Dumps the database at `url` into `file` (made 0600 first: the dump holds the DKIM private keys). */
export async function pgDump(url: string, file: string): Promise<void> {
  closeSync(openSync(file, "w", 0o600));
  await runTool("pg_dump", ["--format=custom", `--file=${file}`, `--dbname=${withoutPassword(url)}`], url);
}

/**
 * Replaces the database's contents with the dump's, in one transaction: it is
 * the dump or, when anything fails, what it was. --clean drops each object the
 * dump holds before making it again.
 */
export async function pgRestore(url: string, file: string): Promise<void> {
  await runTool("pg_restore", ["--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner", `--dbname=${withoutPassword(url)}`, file], url);
}

/** Why pg_restore cannot read the dump's table of contents, or null when it can (a whole, readable dump). */
export async function pgDumpProblem(file: string): Promise<string | null> {
  try {
    await runTool("pg_restore", ["--list", file], null);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Runs a PostgreSQL tool; the password goes in PGPASSWORD, never on the command line (ps shows it). */
async function runTool(name: "pg_dump" | "pg_restore", args: string[], url: string | null): Promise<void> {
  const path = pgTool(name);
  if (!path) throw new Error(`${name} is not on PATH: install PostgreSQL's client tools (Debian: apt install postgresql-client)`);
  const password = url ? decodeURIComponent(new URL(url).password) : "";
  const proc = Bun.spawn([path, ...args], { stdout: "ignore", stderr: "pipe", env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) } });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${name} failed (exit ${code}): ${stderr.trim().split("\n").slice(0, 3).join("; ")}`);
}
