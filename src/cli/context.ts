// What a CLI command works on: the data dir's database, and on it the same
// services the admin UI and the API use, acting as "cli" in the audit log.
import { type Config, type Effective, loadConfigWithOrigins, publicBaseUrl } from "../config/index.ts";
import type { Waiting } from "../service/destinations.ts";
import { createServices, type Services } from "../service/index.ts";
import { sharesSettings, withSharedSettings } from "../service/settings.ts";
import type { Actor } from "../store/audit.ts";
import { databaseLocation, openDatabase, type Store } from "../store/db.ts";
import { preparePrivateDataDir } from "../store/data-dir.ts";
import { enqueue } from "../store/deliveries.ts";
import { loadSharedSecret, VERIFY_SECRET_FILE } from "../store/secrets.ts";
import type { CommandContext } from "./command.ts";

/** Whoever runs the CLI on the server is its admin. */
export const CLI_ACTOR: Actor = { name: "cli", ip: "local", confirmsDestinations: true };

/** Opens the data dir's database for one command; safe while the server runs (WAL). */
export async function withStore<T>(ctx: CommandContext, fn: (store: Store, config: Config) => Promise<T>): Promise<T> {
  const { config } = ctx.config();
  preparePrivateDataDir(config.dataDir);
  const store = await openDatabase(databaseLocation(config), {
    onPreMigrationBackup: (file, pending) => ctx.io.err(`database backed up to ${file} before migrating (${pending.join(", ")})`),
    dataDir: config.dataDir,
    onNoPreMigrationBackup: (reason, pending) => ctx.io.err(`no copy of the database was made before migrating (${pending.join(", ")}): ${reason}`),
  });
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

/** The configuration as the server loads it: with PostgreSQL, with the values the database keeps for every node. */
export async function configAsServed(ctx: CommandContext): Promise<{ config: Config; effective: Effective }> {
  const loaded = ctx.config();
  if (!sharesSettings(loaded.config)) return loaded;
  return withStore(ctx, async (store, config) => loadConfigWithOrigins(await withSharedSettings(store.db, config, ctx.configInput)));
}

/**
 * The services on the data dir's database. Mail they write (verification
 * links) goes into the outbox table, which the running server sends from.
 */
export function withServices<T>(ctx: CommandContext, fn: (services: Services, store: Store) => Promise<T>): Promise<T> {
  return withStore(ctx, async (store, config) => {
    const services = createServices({
      db: store.db,
      config,
      verifyKey: await loadSharedSecret(store.db, config.dataDir, VERIFY_SECRET_FILE),
      configInput: ctx.configInput,
      queueMail: (to, raw) => enqueue(store.db, { from: "", to: [to], raw }),
      publicUrl: () => publicBaseUrl(config),
    });
    return fn(services, store);
  });
}

/** Says which targets get no mail yet and why; on stderr with --json, so standard output stays one JSON document. */
export function reportWaiting(ctx: CommandContext, waiting: Waiting[]): void {
  const print = ctx.json ? ctx.io.err : ctx.io.out;
  for (const w of waiting) print(`waiting for confirmation: ${w.target} (${w.why})${w.mailed ? "; verification mail queued" : ""}`);
}
