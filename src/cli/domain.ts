import { keyState, removableAfter, utcMinute } from "../mail/dkim-key.ts";
import { zoneLine } from "../auth/records.ts";
import type { DomainSettings } from "../aliases/rules.ts";
import { listDkimKeys } from "../store/dkim-keys.ts";
import type { DkimKey } from "../store/schema.ts";
import { domainSettings, listDomains, webhookKey } from "../store/domains.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { dnsCheck } from "./dns.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function domainCommand(ctx: CommandContext): Promise<number> {
  const [action, name, ...rest] = ctx.args;
  const needName = () => {
    if (!name || rest.length) throw new UsageError(`usage: mailferry domain ${action} <name>`);
    return name;
  };
  switch (action) {
    case "add": {
      const domain = await withServices(ctx, (s) => s.domains.add(CLI_ACTOR, needName(), ctx.options.selector ? { selector: ctx.options.selector } : {}));
      ctx.io.out(ctx.json ? JSON.stringify(domain) : `added ${domain.name}`);
      return 0;
    }
    case "remove": {
      const target = needName();
      await withServices(ctx, (s) => s.domains.remove(CLI_ACTOR, target));
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
      const target = needName();
      if (ctx.flags.has("check")) return dnsCheck(ctx, target);
      const records = await withServices(ctx, (s) => s.domains.records(target));
      if (ctx.json) ctx.io.out(JSON.stringify(records));
      else for (const r of records) ctx.io.out(`; ${r.purpose}\n${zoneLine(r)}`);
      return 0;
    }
    case "webhook-key": {
      const target = needName();
      const key = ctx.flags.has("rotate") ? await withServices(ctx, (s) => s.domains.rotateWebhookKey(CLI_ACTOR, target)) : await withStore(ctx, (s) => webhookKey(s.db, target));
      ctx.io.out(key);
      return 0;
    }
    case "dkim": {
      const keys = await withStore(ctx, (s) => listDkimKeys(s.db, needName()));
      if (ctx.json) ctx.io.out(JSON.stringify(keys.map(({ private_key: _secret, ...k }) => k)));
      else ctx.io.out(keys.map((k) => `${k.selector}  ${k.algorithm}  ${keyStatus(k)}  ${new Date(k.created_at).toISOString()}`).join("\n"));
      return 0;
    }
    case "dkim-rotate": {
      if (!name || rest.length > 1 || (ctx.flags.has("activate") && rest.length)) throw new UsageError("usage: mailferry domain dkim-rotate <name> [selector] | dkim-rotate <name> --activate");
      const domain = name.toLowerCase();
      if (ctx.flags.has("activate")) {
        const done = await withServices(ctx, (s) => s.domains.activateDkim(CLI_ACTOR, name));
        ctx.io.out(`selector ${done.selector} signs mail of ${domain} now${done.retired.length ? `; ${done.retired.join(", ")} retired: keep its record published for a week` : ""}`);
        return 0;
      }
      const key = await withServices(ctx, (s) => s.domains.rotateDkim(CLI_ACTOR, name, rest[0]));
      ctx.io.out(
        `new key for ${domain}: selector ${key.selector}, pending: publish its record (mailferry domain dns ${domain}); ` +
          `mailferry signs with it once DNS serves the record (mailferry dns check ${domain}, or the server within 10 minutes), or now with: mailferry domain dkim-rotate ${domain} --activate`,
      );
      return 0;
    }
    case "dkim-remove": {
      if (!name || rest.length !== 1) throw new UsageError("usage: mailferry domain dkim-remove <name> <selector> [--force]");
      await withServices(ctx, (s) => s.domains.removeDkim(CLI_ACTOR, name, rest[0]!, { force: ctx.flags.has("force") }));
      ctx.io.out(`removed selector ${rest[0]} of ${name.toLowerCase()}; remove its DNS record too`);
      return 0;
    }
    case "set": {
      if (!name || rest.length === 0) throw new UsageError("usage: mailferry domain set <name> key=value... (see mailferry --help)");
      const changes = parseSettings(rest);
      const domain = await withServices(ctx, (s) => s.domains.update(CLI_ACTOR, name, changes));
      ctx.io.out(ctx.json ? JSON.stringify({ name: domain.name, ...domainSettings(domain) }) : `updated ${domain.name}: ${rest.join(" ")}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown domain command: ${action ?? "(none)"}; try: add, list, remove, set, dns, dkim, dkim-rotate, dkim-remove, webhook-key`);
  }
}

/** Where a key is in its rotation, for `domain dkim`. */
function keyStatus(key: DkimKey): string {
  switch (keyState(key)) {
    case "pending":
      return "pending (signs once DNS serves its record)";
    case "signing":
      return "signing";
    case "retired":
      return `retired ${utcMinute(key.retired_at!)} (still published; removable after ${utcMinute(removableAfter(key)!)})`;
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
