// Idle outbound SMTP connections kept for the next message to the same
// destination, as Postfix's connection cache does: a new connection costs a
// TCP and usually a TLS handshake and four round trips, a reused one a RSET.
import type { Connection } from "./smtp-client.ts";

export interface ReuseLimits {
  /** How long a connection waits idle for the next message before QUIT. */
  idleMs: number;
  /** Transactions per connection (Postfix's smtp_connection_reuse_count_limit). */
  maxTransactions: number;
  /** Age after which a connection is no longer reused (Postfix's smtp_connection_reuse_time_limit). */
  maxAgeMs: number;
  /** Idle connections kept per destination key. */
  maxIdlePerKey: number;
  /** Idle connections kept in all; when full the one idle longest is closed. */
  maxIdle: number;
}

/**
 * Short idle time: reuse pays off for mail arriving in bursts, and a
 * destination should not see us hold connections we do not use. 20 per
 * destination is Postfix's default destination concurrency.
 */
export const REUSE_LIMITS: ReuseLimits = { idleMs: 5_000, maxTransactions: 100, maxAgeMs: 300_000, maxIdlePerKey: 20, maxIdle: 100 };

/**
 * Which connections may serve each other: same MX host name (SNI and certificate
 * name), address and port, same TLS mode (which says whether the certificate was
 * verified) and same smarthost AUTH user.
 */
export function connectionKey(hostName: string, address: string, port: number, tls: string, authUser: string | undefined): string {
  return `${hostName}|${address}|${port}|${tls}|${authUser ?? ""}`;
}

/** Whether a connection may carry another transaction. */
export function mayReuse(conn: Pick<Connection, "reusable" | "transactions" | "openedAt">, now: number, limits: ReuseLimits): boolean {
  return conn.reusable && conn.transactions < limits.maxTransactions && now - conn.openedAt < limits.maxAgeMs;
}

export interface ConnectionCache {
  /** An idle connection for `key` that just answered RSET, or null: dead ones are closed and skipped. */
  take(key: string): Promise<Connection | null>;
  /** A connection done with its transactions: kept idle for `key` when it may be reused, else closed. */
  release(key: string, conn: Connection): void;
  /** Closes every idle connection, and from now on every released one. */
  close(): void;
}

interface Idle {
  key: string;
  conn: Connection;
  timer: ReturnType<typeof setTimeout>;
}

export function createConnectionCache(limits: ReuseLimits = REUSE_LIMITS, now: () => number = Date.now): ConnectionCache {
  /** Per key, the most recently parked last (taken first: the least likely to have timed out at the server). */
  const byKey = new Map<string, Idle[]>();
  /** Every idle connection, the longest idle first. */
  const all = new Set<Idle>();
  let closed = false;

  const unpark = (idle: Idle) => {
    clearTimeout(idle.timer);
    all.delete(idle);
    const list = byKey.get(idle.key)!;
    list.splice(list.indexOf(idle), 1);
    if (list.length === 0) byKey.delete(idle.key);
  };
  const evict = (idle: Idle) => {
    unpark(idle);
    idle.conn.close();
  };

  return {
    async take(key) {
      for (let idle = byKey.get(key)?.at(-1); idle; idle = byKey.get(key)?.at(-1)) {
        unpark(idle);
        idle.conn.setIdle(false);
        if (!mayReuse(idle.conn, now(), limits)) idle.conn.close();
        // A server that closed the connection or answers 421 fails RSET: the caller opens a fresh one.
        else if (await idle.conn.reset()) return idle.conn;
      }
      return null;
    },
    release(key, conn) {
      // Dead connections (closed by the server while idle) make room first.
      for (const idle of [...(byKey.get(key) ?? [])]) if (!idle.conn.reusable) evict(idle);
      const list = byKey.get(key) ?? [];
      if (closed || !mayReuse(conn, now(), limits) || list.length >= limits.maxIdlePerKey) return conn.close();
      if (all.size >= limits.maxIdle) evict(all.values().next().value!);
      const idle: Idle = { key, conn, timer: setTimeout(() => evict(idle), limits.idleMs) };
      // Never keeps the process alive, nor does the idle socket (setIdle).
      idle.timer.unref();
      conn.setIdle(true);
      list.push(idle);
      byKey.set(key, list);
      all.add(idle);
    },
    close() {
      closed = true;
      for (const idle of [...all]) evict(idle);
    },
  };
}
