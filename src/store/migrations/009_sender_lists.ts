import type { Kysely } from "kysely";
import { createVersionCounter } from "./version-counter.ts";

/**
 * A version counter for the allow- and denylist, bumped by triggers on any
 * change from any connection (server, CLI, API), so the SMTP hot path can keep
 * both lists in memory and reload them only when they change.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await createVersionCounter(db, "sender_lists_version", "sender_lists", ["allowlist", "denylist"]);
}
