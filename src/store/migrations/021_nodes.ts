import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * The nodes serving this database (docs/multi-node.md): each `mailferry serve`
 * registers its hostname and refreshes last_seen, so every node can name all of
 * them (MTA-STS policy, MX records). node_sessions holds, per node, its open
 * SMTP sessions per sender key, for the concurrent-connection limit across
 * nodes on PostgreSQL (src/store/nodes.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE nodes (
    hostname TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE TABLE node_sessions (
    node TEXT NOT NULL,
    sender_key TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (node, sender_key)
  )`);
}
