import { type Kysely, sql } from "kysely";
import { createVersionCounter } from "./version-counter.ts";

/** Domain routing settings, and a version counter the routing cache watches. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE domains ADD COLUMN catch_all INTEGER NOT NULL DEFAULT 1`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN max_targets INTEGER NOT NULL DEFAULT 10 CHECK (max_targets BETWEEN 1 AND 1000)`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN delivery_port INTEGER CHECK (delivery_port BETWEEN 1 AND 65535)`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN accept_subdomains INTEGER NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN random_subdomain_length INTEGER NOT NULL DEFAULT 8 CHECK (random_subdomain_length BETWEEN 1 AND 63)`.execute(db);

  // Any change to domains or aliases, by any connection (server, CLI, a restored
  // backup), bumps routing_version; the listener reloads its rules when it moves.
  await createVersionCounter(db, "routing_version", "routing", ["domains", "aliases"]);
}
