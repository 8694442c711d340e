// Secrets of this data dir (HMAC keys), each in its own 0600 file made on
// first use, so a copy of the directory keeps links and bounces valid.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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

export function loadSecret(dataDir: string, file: string): string {
  const path = join(dataDir, file);
  if (!existsSync(path)) {
    try {
      writeFileSync(path, randomBytes(32).toString("base64url") + "\n", { mode: 0o600, flag: "wx" });
    } catch (err) {
      // Another process (the server and a CLI command) made it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return readFileSync(path, "utf8").trim();
}
