// Secrets of this data dir (HMAC keys), each in its own 0600 file made on
// first use, so a copy of the directory keeps links and bounces valid. On
// PostgreSQL the nodes share them through the `secrets` table (docs/multi-node.md):
// the database's value wins, and the file keeps a copy of it for backups.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeReplacing } from "./data-dir.ts";
import type { DB } from "./db.ts";
import { isPostgres } from "./dialect.ts";

export const SRS_SECRET_FILE = "srs.key";
/** Signs destination verification links. */
export const VERIFY_SECRET_FILE = "verify.key";
/** Signs the alert webhook requests (docs/operations.md, "Alerts"). */
export const ALERTS_WEBHOOK_SECRET_FILE = "alerts-webhook.key";
/**
 * Keys a data dir must not lose (a restore refuses a backup without them): bounces
 * to senders rewritten with a lost SRS key are refused. A lost verify.key is made
 * anew and only voids the verification links already sent.
 */
export const REQUIRED_SECRET_FILES = [SRS_SECRET_FILE];

const newSecret = () => randomBytes(32).toString("base64url");

export function loadSecret(dataDir: string, file: string): string {
  const path = join(dataDir, file);
  if (!existsSync(path)) {
    try {
      writeFileSync(path, newSecret() + "\n", { mode: 0o600, flag: "wx" });
    } catch (err) {
      // Another process (the server and a CLI command) made it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return readFileSync(path, "utf8").trim();
}

/**
 * The secret named `file`: on SQLite the data dir's file (loadSecret); on
 * PostgreSQL the row of that name, which the first node to start puts there —
 * its file's value if it has one (a node that ran before the nodes shared
 * keys), else a new one (`make`). Insert-if-absent then read back: two nodes starting at
 * once both end up with the row that won.
 */
export async function loadSharedSecret(db: DB, dataDir: string, file: string, make: () => string | Promise<string> = newSecret): Promise<string> {
  if (!isPostgres(db)) return loadSecret(dataDir, file);
  const local = readLocal(dataDir, file);
  await db
    .insertInto("secrets")
    .values({ name: file, value: local ?? (await make()), created_at: Date.now() })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  const { value } = await db.selectFrom("secrets").select("value").where("name", "=", file).executeTakeFirstOrThrow();
  // The data dir's copy, so a backup of it holds the key (REQUIRED_SECRET_FILES) like on SQLite.
  if (value !== local) writeReplacing(join(dataDir, file), value + "\n", 0o600);
  return value;
}

/** The keys the server and the CLI sign with, from wherever this store keeps them. */
export async function loadNodeSecrets(db: DB, dataDir: string): Promise<{ srs: string; verify: string; alertsWebhook: string }> {
  return {
    srs: await loadSharedSecret(db, dataDir, SRS_SECRET_FILE),
    verify: await loadSharedSecret(db, dataDir, VERIFY_SECRET_FILE),
    alertsWebhook: await loadSharedSecret(db, dataDir, ALERTS_WEBHOOK_SECRET_FILE),
  };
}

function readLocal(dataDir: string, file: string): string | null {
  try {
    return readFileSync(join(dataDir, file), "utf8").trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}
