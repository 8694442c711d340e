import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * The DKIM key of the server's host name: it signs the notices mailferry
 * writes as itself (verification mails, DSNs) when the host name is not
 * under a managed domain. One row, made on first use.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE server_dkim_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`);
}
