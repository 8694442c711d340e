// ACME state the nodes on one PostgreSQL share (docs/multi-node.md): each
// node's certificate by its hostname, so a node reinstalled with the same
// hostname serves it without ordering again, and the pending HTTP-01
// challenges, so the node the CA reaches answers a challenge another node
// ordered (RFC 8555 section 8.3). On SQLite a node keeps both to itself
// (its data dir and its memory, src/tls/acme.ts); these tables stay empty.
import type { DB } from "./db.ts";
import { isPostgres } from "./dialect.ts";

/** Whether the ACME account, certificates and challenges live in the database (PostgreSQL) rather than with each node. */
export const acmeStateShared = (db: DB) => isPostgres(db);

export interface SharedCertificate {
  /** PEM chain, then its private key (PEM). */
  cert: string;
  key: string;
  directoryUrl: string;
  issuedAt: number;
}

export async function findAcmeCertificate(db: DB, hostname: string): Promise<SharedCertificate | null> {
  const row = await db.selectFrom("acme_certificates").selectAll().where("hostname", "=", hostname).executeTakeFirst();
  return row ? { cert: row.cert, key: row.cert_key, directoryUrl: row.directory_url, issuedAt: Number(row.issued_at) } : null;
}

export async function saveAcmeCertificate(db: DB, hostname: string, c: SharedCertificate): Promise<void> {
  const values = { cert: c.cert, cert_key: c.key, directory_url: c.directoryUrl, issued_at: c.issuedAt };
  await db
    .insertInto("acme_certificates")
    .values({ hostname, ...values })
    .onConflict((oc) => oc.column("hostname").doUpdateSet(values))
    .execute();
}

export async function saveChallenge(db: DB, token: string, keyAuthorization: string, now: number): Promise<void> {
  await db
    .insertInto("acme_challenges")
    .values({ token, key_authorization: keyAuthorization, created_at: now })
    .onConflict((oc) => oc.column("token").doUpdateSet({ key_authorization: keyAuthorization, created_at: now }))
    .execute();
}

export async function removeChallenge(db: DB, token: string): Promise<void> {
  await db.deleteFrom("acme_challenges").where("token", "=", token).execute();
}

export async function findChallenge(db: DB, token: string): Promise<string | null> {
  const row = await db.selectFrom("acme_challenges").select("key_authorization").where("token", "=", token).executeTakeFirst();
  return row?.key_authorization ?? null;
}
