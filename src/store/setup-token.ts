// The one-time set-up token lives in <data>/setup-token while no admin exists:
// restarts keep the set-up URL valid, and `mailferry admin setup-url` (which
// install.sh runs) can print it. It is removed once the first admin exists.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadSecret } from "./secrets.ts";

export const SETUP_TOKEN_FILE = "setup-token";

/** The data dir's set-up token, made (mode 0600) when there is none yet. */
export function openSetupToken(dataDir: string): string {
  return loadSecret(dataDir, SETUP_TOKEN_FILE);
}

/** The data dir's set-up token, or null when none was made (or set-up is done). */
export function readSetupToken(dataDir: string): string | null {
  try {
    return readFileSync(join(dataDir, SETUP_TOKEN_FILE), "utf8").trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Set-up is done (an admin exists): the token opens nothing any more. */
export function removeSetupToken(dataDir: string): void {
  rmSync(join(dataDir, SETUP_TOKEN_FILE), { force: true });
}

/** The set-up page's URL on the admin URL `base` (ending in `/`). */
export function setupUrl(base: string, token: string): string {
  return `${base}setup?token=${token}`;
}
