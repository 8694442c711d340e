import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * Issue 20: what a node used to keep only in its data directory, in the
 * database for the nodes on one PostgreSQL (docs/multi-node.md). `secrets`: the
 * SRS, verification-link and webhook keys and the ACME account key, by name.
 * `acme_certificates`: the certificate a node ordered, by its hostname, so a
 * reinstalled node serves it without ordering again. `acme_challenges`: pending
 * HTTP-01 tokens, so whichever node the CA reaches answers them (RFC 8555
 * section 8.3). On SQLite the files stay where they were and these stay empty.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE TABLE acme_certificates (
    hostname TEXT PRIMARY KEY,
    cert TEXT NOT NULL,
    cert_key TEXT NOT NULL,
    directory_url TEXT NOT NULL,
    issued_at INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE TABLE acme_challenges (
    token TEXT PRIMARY KEY,
    key_authorization TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`);
}
