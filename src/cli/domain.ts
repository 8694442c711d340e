import { join } from "node:path";
import { mkdirSync } from "node:fs";
import type { DomainSettings } from "../routing/rules.ts";
import { addDomain, domainSettings, listDomains, removeDomain, updateDomainSettings } from "../store/domains.ts";
import { DATABASE_FILE, openStore, type Store } from "../store/db.ts";
import type { CommandContext } from "./index.ts";
import { UsageError } from "./index.ts";

/** Opens the data dir's database for one command; safe while the server runs (WAL). */
export async function withStore<T>(ctx: CommandContext, fn: (store: Store) => Promise<T>): Promise<T> {
  const { config } = ctx.config();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  const store = await openStore(join(config.dataDir, DATABASE_FILE));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function domainCommand(ctx: CommandContext): Promise<number> {
  const [action, name, ...rest] = ctx.args;
  const needName = () => {
    if (!name || rest.length) throw new UsageError(`usage: mailferry domain ${action} <name>`);
    return name;
  };
  switch (action) {
    case "add": {
      const domain = await withStore(ctx, (s) => addDomain(s.db, needName()));
      ctx.io.out(ctx.json ? JSON.stringify(domain) : `added ${domain.name}`);
      return 0;
    }
    case "remove": {
      const target = needName();
      await withStore(ctx, (s) => removeDomain(s.db, target));
      ctx.io.out(`removed ${target.toLowerCase()}`);
      return 0;
    }
    case "list": {
      if (name) throw new UsageError("usage: mailferry domain list [--json]");
      const domains = await withStore(ctx, (s) => listDomains(s.db));
      if (ctx.json) ctx.io.out(JSON.stringify(domains.map((d) => ({ name: d.name, ...domainSettings(d), created_at: new Date(d.created_at).toISOString() }))));
      else ctx.io.out(domains.length ? domains.map((d) => d.name).join("\n") : "(no domains)");
      return 0;
    }
    case "set": {
      if (!name || rest.length === 0) throw new UsageError("usage: mailferry domain set <name> key=value... (see mailferry --help)");
      const changes = parseSettings(rest);
      const domain = await withStore(ctx, (s) => updateDomainSettings(s.db, name, changes));
      ctx.io.out(ctx.json ? JSON.stringify({ name: domain.name, ...domainSettings(domain) }) : `updated ${domain.name}: ${rest.join(" ")}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown domain command: ${action ?? "(none)"}; try: add, list, remove, set`);
  }
}

/** `key=value` words into settings; values are checked again by updateDomainSettings. */
function parseSettings(words: string[]): Partial<DomainSettings> {
  const onOff = (key: string, v: string) => {
    if (v !== "on" && v !== "off") throw new UsageError(`${key} takes on or off`);
    return v === "on";
  };
  const int = (v: string) => (/^\d+$/.test(v) ? Number(v) : NaN);
  const changes: Partial<DomainSettings> = {};
  for (const word of words) {
    const [key, value] = word.split("=", 2) as [string, string | undefined];
    if (value === undefined) throw new UsageError(`expected key=value, got "${word}"`);
    switch (key) {
      case "catch_all":
        changes.catchAll = onOff(key, value);
        break;
      case "accept_subdomains":
        changes.acceptSubdomains = onOff(key, value);
        break;
      case "max_targets":
        changes.maxTargets = int(value);
        break;
      case "random_subdomain_length":
        changes.randomSubdomainLength = int(value);
        break;
      case "delivery_port":
        changes.deliveryPort = value === "default" ? null : int(value);
        break;
      default:
        throw new UsageError(`unknown domain setting: ${key}`);
    }
  }
  return changes;
}
