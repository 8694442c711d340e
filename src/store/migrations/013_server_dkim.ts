import { type Kysely, sql } from "kysely";

/**
 * The DKIM key of the server's host name: it signs the notices mailferry
 * writes as itself (verification mails, DSNs) when the host name is not
 * under a managed domain. One row, made on first use.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE server_dkim_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`.execute(db);
}
