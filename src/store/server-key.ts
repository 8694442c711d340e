// The DKIM key of the server's host name, made once on first use and kept in
// the database (0600, in every backup) next to the domains' keys.
import { DEFAULT_SELECTOR, generateDkimKey } from "../mail/dkim-key.ts";
import type { DB } from "./db.ts";
import type { ServerDkimKey } from "./schema.ts";

/** The server key, generated and stored the first time it is asked for. */
export async function serverDkimKey(db: DB, now = Date.now()): Promise<ServerDkimKey> {
  const existing = await db.selectFrom("server_dkim_key").selectAll().executeTakeFirst();
  if (existing) return existing;
  const key = await generateDkimKey();
  // The server and a CLI command may both get here first: the one row kept is the one both use.
  await db
    .insertInto("server_dkim_key")
    .values({ id: 1, selector: DEFAULT_SELECTOR, algorithm: key.algorithm, private_key: key.privateKey, public_key: key.publicKey, created_at: now })
    .onConflict((oc) => oc.doNothing())
    .execute();
  return db.selectFrom("server_dkim_key").selectAll().executeTakeFirstOrThrow();
}
