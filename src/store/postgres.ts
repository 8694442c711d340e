// PostgreSQL for kysely's PostgresDialect through Bun's built-in client
// (Bun.SQL): no npm dependency, native code already inside the binary. Kysely
// talks to a node-postgres-shaped pool; this is that shape over Bun.SQL's
// reserved connections (docs/operations.md, "PostgreSQL").
import { SQL } from "bun";
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";

/** A pool of at most `max` connections to `url` (postgres://user:pass@host:port/db). */
export function bunSqlPool(url: string, max: number): PostgresPool {
  // bigint: int8 columns (millisecond times, ids, counts) arrive as BigInt
  // rather than as strings, so they can be told apart from text and made numbers.
  const client = new SQL({ url, max, bigint: true, idleTimeout: 60, connectionTimeout: 10 });
  return {
    options: {},
    async connect() {
      const reserved = await client.reserve();
      const connection = {
        async query<R>(text: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
          const result = await reserved.unsafe(text, parameters as unknown[]);
          return { command: result.command, rowCount: result.count ?? 0, rows: Array.from(result as Record<string, unknown>[], numbersFromBigints) as R[] };
        },
        release: () => reserved.release(),
      };
      // Kysely reads through cursors only when given one (PostgresDialectConfig.cursor); none is.
      return connection as unknown as PostgresPoolClient;
    },
    end: () => client.close(),
  };
}

/** The store keeps integers as JavaScript numbers (all below 2^53), as bun:sqlite returns them. */
function numbersFromBigints(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) if (typeof row[key] === "bigint") row[key] = Number(row[key]);
  return row;
}

/** The URL to show: user, host, port and database, never the password. */
export function withoutPassword(url: string): string {
  const where = new URL(url);
  where.password = "";
  return where.href;
}
