// The settings table: values the database keeps itself, such as the version
// counters its triggers bump (migrations/version-counter.ts), which caches on
// the SMTP hot path read on every use.
import { type DB, hotStatement } from "./db.ts";

const selectSetting = hotStatement((db, v: { key: string }) => db.selectFrom("settings").select("value").where("key", "=", v.key));

/** The current value of a version counter: it moves on every change to the tables it watches. */
export async function versionCounter(db: DB, key: "routing_version" | "sender_lists_version" | "shared_settings_version"): Promise<string> {
  const [row] = await selectSetting(db, { key });
  if (!row) throw new Error(`database setting ${key} is missing`);
  return row.value;
}

const FIRST_RUN_DONE = "first_run_done";

/** Whether the dashboard's "Getting started" steps were all seen done once. */
export async function firstRunDone(db: DB): Promise<boolean> {
  return (await db.selectFrom("settings").select("key").where("key", "=", FIRST_RUN_DONE).executeTakeFirst()) !== undefined;
}

/** Remembers for good that the "Getting started" steps were all done. */
export async function markFirstRunDone(db: DB, now = Date.now()): Promise<void> {
  await db.insertInto("settings").values({ key: FIRST_RUN_DONE, value: "true", updated_at: now }).onConflict((oc) => oc.doNothing()).execute();
}
