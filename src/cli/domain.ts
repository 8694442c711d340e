import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { domainRecords, mtaStsMode, zoneLine } from "../auth/records.ts";
import type { DomainSettings } from "../routing/rules.ts";
import { listDkimKeys, removeDkimKey, rotateDkimKey } from "../store/dkim.ts";
import { addDomain, domainSettings, listDomains, parseDomainName, removeDomain, updateDomainSettings, webhookKey } from "../store/domains.ts";
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
      const domain = await withStore(ctx, (s) => addDomain(s.db, needName(), ctx.options.selector ? { selector: ctx.options.selector } : {}));
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
    case "dns": {
      const { config } = ctx.config();
      const keys = await withStore(ctx, (s) => listDkimKeys(s.db, needName()));
      const records = domainRecords({ domain: parseDomainName(name!), hostname: config.hostname, srsDomain: config.srs.domain, dkimKeys: keys, mtaStsMode: mtaStsMode(config.tls.cert !== null) });
      if (ctx.json) ctx.io.out(JSON.stringify(records));
      else for (const r of records) ctx.io.out(`; ${r.purpose}\n${zoneLine(r)}`);
      return 0;
    }
    case "webhook-key": {
      const key = await withStore(ctx, (s) => webhookKey(s.db, needName(), ctx.flags.has("rotate")));
      ctx.io.out(key);
      return 0;
    }
    case "dkim": {
      const keys = await withStore(ctx, (s) => listDkimKeys(s.db, needName()));
      if (ctx.json) ctx.io.out(JSON.stringify(keys.map(({ private_key: _secret, ...k }) => k)));
      else ctx.io.out(keys.map((k) => `${k.selector}  ${k.algorithm}  ${k.retired ? "retired (still published)" : "signing"}  ${new Date(k.created_at).toISOString()}`).join("\n"));
      return 0;
    }
    case "dkim-rotate": {
      if (!name || rest.length > 1) throw new UsageError("usage: mailferry domain dkim-rotate <name> [selector]");
      const key = await withStore(ctx, (s) => rotateDkimKey(s.db, name, rest[0]));
      ctx.io.out(`new signing key for ${name.toLowerCase()}: selector ${key.selector}; publish it (mailferry domain dns ${name.toLowerCase()}), keep the old selector until mail signed with it has been read`);
      return 0;
    }
    case "dkim-remove": {
      if (!name || rest.length !== 1) throw new UsageError("usage: mailferry domain dkim-remove <name> <selector>");
      await withStore(ctx, (s) => removeDkimKey(s.db, name, rest[0]!));
      ctx.io.out(`removed selector ${rest[0]} of ${name.toLowerCase()}; remove its DNS record too`);
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
      throw new UsageError(`unknown domain command: ${action ?? "(none)"}; try: add, list, remove, set, dns, dkim, dkim-rotate, dkim-remove, webhook-key`);
  }
}

/** `key=value` words into settings; values are checked again by updateDomainSettings. */
function parseSettings(words: string[]): Partial<DomainSettings> {
  const onOff = (key: string, v: string) => {
    if (v !== "on" && v !== "off") throw new UsageError(`${key} takes on or off`);
    return v === "on";
  };
  // null: the domain follows the configuration's [addresses] default.
  const onOffDefault = (key: string, v: string) => {
    if (v !== "on" && v !== "off" && v !== "default") throw new UsageError(`${key} takes on, off or default`);
    return v === "default" ? null : v === "on";
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
        changes.acceptSubdomains = onOffDefault(key, value);
        break;
      case "random_subdomain":
        changes.randomSubdomain = onOffDefault(key, value);
        break;
      case "scan_spam":
        changes.scanSpam = onOff(key, value);
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
