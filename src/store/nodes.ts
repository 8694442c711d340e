// The nodes serving one database (docs/multi-node.md): each `mailferry serve`
// registers its hostname when it starts and refreshes last_seen while it runs,
// so any node can name every MX host (the MTA-STS policy, the MX records) and
// count a sender's open sessions across the live ones. On SQLite there is one.
import { UserError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DB } from "./db.ts";
import { isPostgres } from "./dialect.ts";

/** How often a running node refreshes its last_seen. */
export const NODE_HEARTBEAT_MS = 15_000;
/** A node seen within this long is alive: it missed at most three refreshes. */
export const NODE_ALIVE_MS = 60_000;

export interface NodeState {
  hostname: string;
  started_at: number;
  last_seen: number;
  alive: boolean;
}

/**
 * A node starting: its row (new, or started again) and no sessions counted
 * for it, since those of its previous run ended with it. On SQLite one server
 * owns the database: its row is the only one (a changed hostname replaces the old).
 */
export async function registerNode(db: DB, hostname: string, now: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (!isPostgres(db)) await trx.deleteFrom("nodes").where("hostname", "!=", hostname).execute();
    await trx.deleteFrom("node_sessions").where("node", "=", hostname).execute();
    await trx
      .insertInto("nodes")
      .values({ hostname, started_at: now, last_seen: now })
      .onConflict((oc) => oc.column("hostname").doUpdateSet({ started_at: now, last_seen: now }))
      .execute();
  });
}

/** A running node is still there (registered again if it was forgotten meanwhile: it runs, so it is an MX host). */
export async function touchNode(db: DB, hostname: string, now: number): Promise<void> {
  await db
    .insertInto("nodes")
    .values({ hostname, started_at: now, last_seen: now })
    .onConflict((oc) => oc.column("hostname").doUpdateSet({ last_seen: now }))
    .execute();
}

/** Every registered node, by hostname. */
export async function listNodes(db: DB, now: number): Promise<NodeState[]> {
  const rows = await db.selectFrom("nodes").selectAll().orderBy("hostname").execute();
  return rows.map((r) => ({ hostname: r.hostname, started_at: Number(r.started_at), last_seen: Number(r.last_seen), alive: now - Number(r.last_seen) <= NODE_ALIVE_MS }));
}

/** Removes a decommissioned node (and its session counts). */
export async function forgetNode(db: DB, hostname: string): Promise<void> {
  const name = hostname.trim().toLowerCase();
  const removed = await db.transaction().execute(async (trx) => {
    await trx.deleteFrom("node_sessions").where("node", "=", name).execute();
    return trx.deleteFrom("nodes").where("hostname", "=", name).executeTakeFirst();
  });
  if (removed.numDeletedRows === 0n) throw new UserError("not_found", `no node named ${name} is registered`, "hostname");
}

/** The MX host names of the domains: every registered node and `self` (the node asking, perhaps not yet registered), sorted. */
export async function nodeHostnames(db: DB, self: string): Promise<string[]> {
  const rows = await db.selectFrom("nodes").select("hostname").execute();
  return [...new Set([self, ...rows.map((r) => r.hostname)])].sort();
}

/** Registers the node, then refreshes its last_seen every NODE_HEARTBEAT_MS until stopped. */
export async function startNodeHeartbeat(db: DB, hostname: string, logger: Logger): Promise<{ stop(): Promise<void> }> {
  await registerNode(db, hostname, Date.now());
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    beating = touchNode(db, hostname, Date.now()).catch((err) => logger.error("node.heartbeat_failed", { error: err }));
  }, NODE_HEARTBEAT_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await beating;
    },
  };
}

/** One more open session of `senderKey` on `node`. */
export async function openNodeSession(db: DB, node: string, senderKey: string): Promise<void> {
  await db
    .insertInto("node_sessions")
    .values({ node, sender_key: senderKey, count: 1 })
    .onConflict((oc) => oc.columns(["node", "sender_key"]).doUpdateSet((eb) => ({ count: eb("node_sessions.count", "+", 1) })))
    .execute();
}

/**
 * The open sessions of `senderKey` on every live node. A dead node's counts
 * (last_seen stale) are left out, and cleared when it starts again (registerNode).
 */
export async function liveSessions(db: DB, senderKey: string, now: number): Promise<number> {
  const row = await db
    .selectFrom("node_sessions")
    .innerJoin("nodes", "nodes.hostname", "node_sessions.node")
    .where("node_sessions.sender_key", "=", senderKey)
    .where("nodes.last_seen", ">", now - NODE_ALIVE_MS)
    .select((eb) => eb.fn.sum<number | string>("node_sessions.count").as("open"))
    .executeTakeFirst();
  return Number(row?.open ?? 0);
}

/** A session openNodeSession counted has closed. */
export async function closeNodeSession(db: DB, node: string, senderKey: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable("node_sessions").set((eb) => ({ count: eb("count", "-", 1) })).where("node", "=", node).where("sender_key", "=", senderKey).execute();
    await trx.deleteFrom("node_sessions").where("node", "=", node).where("sender_key", "=", senderKey).where("count", "<=", 0).execute();
  });
}
