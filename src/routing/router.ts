// The router at the I/O edge: the routing configuration is loaded from the
// database once and reused until routing_version moves (triggers bump it on
// every change to domains, aliases or verified destinations, from any
// connection) or the configured defaults change.
import type { Config, VerifyDestinations } from "../config/index.ts";
import type { DB } from "../store/db.ts";
import { aliasIdsConfirmingTargets, allAliasRows, toRule } from "../store/aliases.ts";
import { confirmedDestinations } from "../store/destinations.ts";
import { allDomainRows, domainSettings } from "../store/domains.ts";
import { versionCounter } from "../store/settings.ts";
import { postmasterRecipient, type Route, route } from "./resolve.ts";
import { type AddressDefaults, buildRoutingConfig, effectiveSettings, NO_SUBDOMAINS, type RoutingConfig, type Verification } from "../aliases/rules.ts";

/** The rules at one moment: what an RCPT command asks of them, from one read of the version. */
export interface RoutingView {
  route(recipient: string): Route;
  /** The address a recipient is routed as: `postmaster` without a domain gets one (postmasterRecipient). */
  recipient(address: string): string;
}

export interface Router {
  route(recipient: string): Promise<Route>;
  recipient(address: string): Promise<string>;
  /** Both of the above against the same rules, reading routing_version once. */
  view(): Promise<RoutingView>;
  config(): Promise<RoutingConfig>;
}

export interface RouterOptions {
  /** Read on each use, so a settings change applies without a restart. */
  defaults: () => AddressDefaults;
  verifyDestinations: () => VerifyDestinations;
  /** This server's host name, whose postmaster takes `RCPT TO:<postmaster>`. */
  hostname: string;
}

/** Options that follow a (live-updated) configuration. */
export function routerOptions(config: Pick<Config, "addresses" | "delivery" | "hostname">): RouterOptions {
  return { defaults: () => config.addresses, verifyDestinations: () => config.delivery.verifyDestinations, hostname: config.hostname };
}

export function createRouter(db: DB, options: RouterOptions = { defaults: () => NO_SUBDOMAINS, verifyDestinations: () => "off", hostname: "localhost" }): Router {
  let cached: { key: string; config: RoutingConfig } | null = null;
  let loading: Promise<{ key: string; config: RoutingConfig }> | null = null;

  const keyOf = (version: string) => JSON.stringify([version, options.defaults(), options.verifyDestinations()]);

  async function config(): Promise<RoutingConfig> {
    const key = keyOf(await versionCounter(db, "routing_version"));
    if (cached && cached.key === key) return cached.config;
    loading ??= load().finally(() => (loading = null));
    cached = await loading;
    return cached.config;
  }

  // One read transaction: the version and the rules it describes are consistent.
  const load = () =>
    db.transaction().execute(async (trx) => {
      const key = keyOf(await versionCounter(trx, "routing_version"));
      const defaults = options.defaults();
      const domains = await allDomainRows(trx);
      const names = new Map(domains.map((d) => [d.id, d.name]));
      const aliases = await allAliasRows(trx);
      const verification = await loadVerification(trx, options.verifyDestinations());
      return {
        key,
        config: buildRoutingConfig(
          domains.map((d) => ({ name: d.name, settings: effectiveSettings(domainSettings(d), defaults) })),
          aliases.map((a) => toRule(a, names.get(a.domain_id)!)),
          verification,
        ),
      };
    });

  const view = async (): Promise<RoutingView> => {
    const rules = await config();
    return { route: (recipient) => route(recipient, rules), recipient: (address) => postmasterRecipient(address, options.hostname, rules) };
  };

  return {
    config,
    view,
    route: async (recipient) => (await view()).route(recipient),
    recipient: async (address) => (await view()).recipient(address),
  };
}

/** The confirmed destinations and the aliases whose targets need them, as the mode says. */
async function loadVerification(db: DB, mode: VerifyDestinations): Promise<Verification | null> {
  if (mode === "off") return null;
  const confirmed = await confirmedDestinations(db);
  if (mode === "all") return { confirmed, aliases: "all" };
  return { confirmed, aliases: await aliasIdsConfirmingTargets(db) };
}
