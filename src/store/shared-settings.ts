// Settings changed at run time that the nodes on one PostgreSQL share
// (docs/multi-node.md): raw values by key, as config.toml would hold them; the
// configuration loader parses them like any other source.
import type { DB } from "./db.ts";

/** Every shared value, by key ("greylist.delay" → "2m"). */
export async function readSharedSettings(db: DB): Promise<Record<string, string>> {
  const rows = await db.selectFrom("shared_settings").select(["key", "value"]).execute();
  return Object.fromEntries(rows.map((row) => [row.key, row.value]));
}

/** Sets each key to its value in one transaction; "" removes the key (back to config.toml or the default). */
export async function writeSharedSettings(db: DB, changes: Record<string, string>, now = Date.now()): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const [key, value] of Object.entries(changes)) {
      if (value === "") await trx.deleteFrom("shared_settings").where("key", "=", key).execute();
      else await trx.insertInto("shared_settings").values({ key, value, updated_at: now }).onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now })).execute();
    }
  });
}
