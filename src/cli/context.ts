// What a CLI command works on: the data dir's database, and on it the same
// services the admin UI and the API use, acting as "cli" in the audit log.
import { join } from "node:path";
import { adminUrl, type Config } from "../config/index.ts";
import { createServices, type Services } from "../service/index.ts";
import type { Actor } from "../store/audit.ts";
import { DATABASE_FILE, openStore, type Store } from "../store/db.ts";
import { preparePrivateDataDir } from "../store/data-dir.ts";
import { enqueue } from "../store/deliveries.ts";
import type { CommandContext } from "./index.ts";

export const CLI_ACTOR: Actor = { name: "cli", ip: "local" };

/** Opens the data dir's database for one command; safe while the server runs (WAL). */
export async function withStore<T>(ctx: CommandContext, fn: (store: Store, config: Config) => Promise<T>): Promise<T> {
  const { config } = ctx.config();
  preparePrivateDataDir(config.dataDir);
  const store = await openStore(join(config.dataDir, DATABASE_FILE), {
    onPreMigrationBackup: (file, pending) => ctx.io.err(`database backed up to ${file} before migrating (${pending.join(", ")})`),
  });
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

/**
 * The services on the data dir's database. Mail they write (verification
 * links) goes into the outbox table, which the running server sends from.
 */
export function withServices<T>(ctx: CommandContext, fn: (services: Services, store: Store) => Promise<T>): Promise<T> {
  return withStore(ctx, (store, config) => {
    const services = createServices({
      db: store.db,
      config,
      queueMail: async (to, raw) => {
        await enqueue(store.db, to, raw);
      },
      publicUrl: () => config.http.publicUrl ?? adminUrl(config),
    });
    return fn(services, store);
  });
}

/** Says verification mail was queued; on stderr with --json, so standard output stays one JSON document. */
export function reportVerificationSent(ctx: CommandContext, addresses: string[]): void {
  const print = ctx.json ? ctx.io.err : ctx.io.out;
  for (const address of addresses) print(`verification mail queued for ${address}: mail is forwarded there once confirmed`);
}
