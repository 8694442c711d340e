import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";
import { createVersionCounter } from "./version-counter.ts";

/** Domain routing settings, and a version counter the routing cache watches. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE domains ADD COLUMN catch_all INTEGER NOT NULL DEFAULT 1`);
  await ddl(db, `ALTER TABLE domains ADD COLUMN max_targets INTEGER NOT NULL DEFAULT 10 CHECK (max_targets BETWEEN 1 AND 1000)`);
  await ddl(db, `ALTER TABLE domains ADD COLUMN delivery_port INTEGER CHECK (delivery_port BETWEEN 1 AND 65535)`);
  await ddl(db, `ALTER TABLE domains ADD COLUMN accept_subdomains INTEGER NOT NULL DEFAULT 0`);
  await ddl(db, `ALTER TABLE domains ADD COLUMN random_subdomain_length INTEGER NOT NULL DEFAULT 8 CHECK (random_subdomain_length BETWEEN 1 AND 63)`);

  // Any change to domains or aliases, by any connection (server, CLI, a restored
  // backup), bumps routing_version; the listener reloads its rules when it moves.
  await createVersionCounter(db, "routing_version", "routing", ["domains", "aliases"]);
}
