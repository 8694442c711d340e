import { type Kysely, sql } from "kysely";

/** Domain routing settings, and a version counter the routing cache watches. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE domains ADD COLUMN catch_all INTEGER NOT NULL DEFAULT 1`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN max_targets INTEGER NOT NULL DEFAULT 10 CHECK (max_targets BETWEEN 1 AND 1000)`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN delivery_port INTEGER CHECK (delivery_port BETWEEN 1 AND 65535)`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN accept_subdomains INTEGER NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE domains ADD COLUMN random_subdomain_length INTEGER NOT NULL DEFAULT 8 CHECK (random_subdomain_length BETWEEN 1 AND 63)`.execute(db);

  // Any change to domains or aliases, by any connection (server, CLI, a restored
  // backup), bumps routing_version; the listener reloads its rules when it moves.
  await sql`INSERT INTO settings (key, value, updated_at) VALUES ('routing_version', '0', 0)`.execute(db);
  for (const table of ["domains", "aliases"]) {
    for (const op of ["INSERT", "UPDATE", "DELETE"]) {
      await sql
        .raw(
          `CREATE TRIGGER ${table}_${op.toLowerCase()}_routing AFTER ${op} ON ${table} BEGIN
             UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'routing_version';
           END`,
        )
        .execute(db);
    }
  }
}
