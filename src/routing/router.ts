// The resolver at the I/O edge: the routing configuration is loaded from the
// database once and reused until routing_version moves (triggers bump it on
// every change to domains or aliases, from any connection).
import type { DB } from "../store/db.ts";
import { toRule } from "../store/aliases.ts";
import { domainSettings } from "../store/domains.ts";
import { resolve, type Verdict } from "./resolve.ts";
import { buildRoutingConfig, type RoutingConfig } from "./rules.ts";

export interface Router {
  resolve(recipient: string): Promise<Verdict>;
  config(): Promise<RoutingConfig>;
}

export function createRouter(db: DB): Router {
  let cached: { version: string; config: RoutingConfig } | null = null;
  let loading: Promise<{ version: string; config: RoutingConfig }> | null = null;

  async function config(): Promise<RoutingConfig> {
    const version = await readVersion(db);
    if (cached && cached.version === version) return cached.config;
    loading ??= load().finally(() => (loading = null));
    cached = await loading;
    return cached.config;
  }

  // One read transaction: the version and the rules it describes are consistent.
  const load = () =>
    db.transaction().execute(async (trx) => {
      const version = await readVersion(trx);
      const domains = await trx.selectFrom("domains").selectAll().execute();
      const names = new Map(domains.map((d) => [d.id, d.name]));
      const aliases = await trx.selectFrom("aliases").selectAll().orderBy("id").execute();
      return {
        version,
        config: buildRoutingConfig(
          domains.map((d) => ({ name: d.name, settings: domainSettings(d) })),
          aliases.map((a) => toRule(a, names.get(a.domain_id)!)),
        ),
      };
    });

  return { config, resolve: async (recipient) => resolve(recipient, await config()) };
}

async function readVersion(db: DB): Promise<string> {
  return (await db.selectFrom("settings").select("value").where("key", "=", "routing_version").executeTakeFirstOrThrow()).value;
}
