// Background work that must run on one node at a time when several share one
// PostgreSQL (docs/operations.md, "PostgreSQL"): housekeeping, DKIM activation
// and the alert checks. Each job kind is a session-level advisory lock held on
// one connection kept for the purpose; when a node dies its connection closes,
// PostgreSQL releases its locks, and another node's next poll takes them. On
// SQLite one server owns the database (the data-dir lock), so it holds them all.
import type { Logger } from "../log.ts";
import { type Kysely, sql } from "kysely";
import type { DB } from "./db.ts";
import { isPostgres } from "./dialect.ts";

export const JOB_KINDS = ["housekeeping", "dkim_activation", "alerts"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** The first key of every lock (pg_try_advisory_lock(int, int)): "mf" in ASCII, apart from the migration lock. */
const LOCK_NAMESPACE = 0x6d66;
/** How often a node tries the locks it lacks and checks that its connection (and so its locks) lives. */
export const JOB_LOCK_POLL_MS = 2_000;

export interface JobLocks {
  /** Whether this node runs `kind` now. */
  holds(kind: JobKind): boolean;
  /** Takes the free locks, then keeps polling; resolves after the first try. */
  start(): Promise<void>;
  /** Releases the locks (another node takes them at its next poll). */
  stop(): Promise<void>;
}

export function createJobLocks(db: DB, logger: Logger): JobLocks {
  if (!isPostgres(db)) return { holds: () => true, start: async () => {}, stop: async () => {} };
  const held = new Set<JobKind>();
  const session = heldConnection(db);
  let timer: ReturnType<typeof setInterval> | undefined;
  let polling: Promise<void> = Promise.resolve();

  async function poll() {
    try {
      const conn = await session.get();
      for (const kind of JOB_KINDS.filter((k) => !held.has(k))) {
        const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${LOCK_NAMESPACE}::integer, ${JOB_KINDS.indexOf(kind)}::integer) AS locked`.execute(conn);
        if (!rows[0]?.locked) continue;
        held.add(kind);
        logger.info("jobs.lock_taken", { job: kind });
      }
      // A live connection is what keeps session-level locks.
      if (held.size > 0) await sql`SELECT 1`.execute(conn);
    } catch (err) {
      if (held.size > 0) logger.error("jobs.lock_lost", { jobs: [...held], error: err });
      held.clear();
      session.drop();
    }
  }

  return {
    holds: (kind) => held.has(kind),
    async start() {
      await (polling = poll());
      timer = setInterval(() => void (polling = poll()), JOB_LOCK_POLL_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await polling;
      held.clear();
      // Back to the pool, the locks must not go with it.
      await session.get().then((conn) => sql`SELECT pg_advisory_unlock_all()`.execute(conn)).catch(() => {});
      session.drop();
    },
  };
}

/** One pooled connection kept out of the pool until dropped: session-level locks live as long as it does. */
function heldConnection(db: DB) {
  let current: Promise<{ conn: Kysely<any>; release: () => void }> | null = null;
  return {
    async get(): Promise<Kysely<any>> {
      current ??= new Promise((resolve, reject) => {
        db.connection()
          .execute((conn) => new Promise<void>((release) => resolve({ conn, release })))
          .catch(reject);
      });
      return (await current).conn;
    },
    drop() {
      void current?.then((c) => c.release(), () => {});
      current = null;
    },
  };
}
