// Alias rules as the resolver sees them, and the one validation every way
// of creating a rule (CLI, TXT import, UI, API) goes through.
import { normalizeDomain } from "../mail/domain.ts";
import { UserError } from "../errors.ts";
import { parseMailbox } from "../mail/address.ts";
import { webhookUrlProblem } from "../net/ssrf.ts";
import { type CompiledPattern, compilePattern, patternProblem } from "./regex.ts";

/** How an alias matches a local part. */
export type AliasMatcher = "exact" | "regex" | "catch-all";
/** What a disabled alias answers: accept and discard (`!`), 421 (`!!`) or 550 (`!!!`). */
export type DisabledMode = "drop" | "soft" | "hard";

/** An alias as the user describes it, before validation. */
export interface AliasInput {
  matcher: AliasMatcher;
  /** exact: the local part; regex: the pattern source without slashes; catch-all: "*". */
  pattern: string;
  global?: boolean;
  recipients: string[];
  /** null or absent: enabled. */
  disabled?: DisabledMode | null;
  description?: string;
}

/** A validated alias, as stored and as the resolver uses it. */
export interface AliasRule {
  id: number;
  /** The managed domain the alias belongs to. */
  domain: string;
  /** Labels in front of the domain (`x7k2p9q1`, `dev.team`) for an alias on a subdomain; "" for the domain itself. */
  subdomain: string;
  matcher: AliasMatcher;
  pattern: string;
  global: boolean;
  recipients: string[];
  disabled: DisabledMode | null;
  description: string;
}

export interface DomainSettings {
  /** Whether catch-all aliases apply on this domain. */
  catchAll: boolean;
  /** At most this many unique targets per recipient after expansion. */
  maxTargets: number;
  /** SMTP port for delivering to this domain's alias targets; null: the global outbound port. */
  deliveryPort: number | null;
  /** `x@any.sub.domain` resolves against this domain's aliases, and addresses may be created on a named subdomain; null: follow `[addresses] subdomain_match`. */
  acceptSubdomains: boolean | null;
  /** Addresses created without saying get a random subdomain; null: follow `[addresses] random_subdomain`. */
  randomSubdomain: boolean | null;
  /** Length of the random label when an address is created with a random subdomain. */
  randomSubdomainLength: number;
  /** Messages for this domain are checked by the configured spam scanner (when there is one). */
  scanSpam: boolean;
}

export const DEFAULT_DOMAIN_SETTINGS: DomainSettings = {
  catchAll: true,
  maxTargets: 10,
  deliveryPort: null,
  acceptSubdomains: null,
  randomSubdomain: null,
  randomSubdomainLength: 8,
  scanSpam: true,
};

/** What a domain follows until it sets its own (`[addresses]` in the configuration). */
export interface AddressDefaults {
  randomSubdomain: boolean;
  subdomainMatch: boolean;
}

export const NO_SUBDOMAINS: AddressDefaults = { randomSubdomain: false, subdomainMatch: false };

/** A domain's settings with the followed defaults filled in. */
export type EffectiveSettings = Omit<DomainSettings, "acceptSubdomains" | "randomSubdomain"> & { acceptSubdomains: boolean; randomSubdomain: boolean };

export function effectiveSettings(settings: DomainSettings, defaults: AddressDefaults): EffectiveSettings {
  return { ...settings, acceptSubdomains: settings.acceptSubdomains ?? defaults.subdomainMatch, randomSubdomain: settings.randomSubdomain ?? defaults.randomSubdomain };
}

export interface DomainRouting {
  /** The full name: a managed domain, or a subdomain of one that has aliases of its own. */
  name: string;
  settings: EffectiveSettings;
  /** For a subdomain's aliases: the managed domain, whose aliases apply when none here matches and it accepts subdomains. */
  parent: DomainRouting | null;
  /** Exact aliases by lower-case local part. */
  exact: Map<string, AliasRule>;
  /** Regex aliases in creation order, compiled. */
  regex: { rule: AliasRule; compiled: CompiledPattern }[];
  catchAll: AliasRule | null;
}

export interface RoutingConfig {
  domains: Map<string, DomainRouting>;
  /** Which outside destinations must have confirmed before mail reaches them; null: none need to. */
  verification: Verification | null;
}

export interface Verification {
  /** Lower-case addresses outside the managed domains whose owners confirmed. */
  confirmed: Set<string>;
  /** Whose targets are checked: every alias's (verify_destinations = all), or these aliases' (saved by write-scope tokens). */
  aliases: "all" | Set<number>;
}

/** Builds the resolver's view from stored rows; regexes are compiled once here. */
export function buildRoutingConfig(domains: { name: string; settings: EffectiveSettings }[], aliases: AliasRule[], verification: Verification | null = null): RoutingConfig {
  const byName = new Map<string, DomainRouting>();
  for (const d of domains) byName.set(d.name, { name: d.name, settings: d.settings, parent: null, exact: new Map(), regex: [], catchAll: null });
  const managed = new Set(byName.keys());
  const nodeOf = (rule: AliasRule): DomainRouting | undefined => {
    const base = byName.get(rule.domain);
    if (!base || rule.subdomain === "") return base;
    const name = `${rule.subdomain}.${rule.domain}`;
    if (managed.has(name)) return undefined; // managed in its own right since (added after these aliases): its own aliases decide
    let node = byName.get(name);
    if (!node) byName.set(name, (node = { name, settings: base.settings, parent: base, exact: new Map(), regex: [], catchAll: null }));
    return node;
  };
  for (const rule of [...aliases].sort((a, b) => a.id - b.id)) {
    const domain = nodeOf(rule);
    if (!domain) continue;
    if (rule.matcher === "exact") domain.exact.set(rule.pattern, rule);
    else if (rule.matcher === "catch-all") domain.catchAll = rule;
    else {
      try {
        domain.regex.push({ rule, compiled: compilePattern(rule.pattern) });
      } catch {
        // Stored before a validation change and no longer compilable: it cannot match anything.
      }
    }
  }
  return { domains: byName, verification };
}

export type RecipientKind = "address" | "domain" | "webhook";

/** What a recipient string is; templates with `$1`… are classified by their shape. */
export function recipientKind(recipient: string): RecipientKind {
  if (/^https?:\/\//i.test(recipient)) return "webhook";
  return recipient.includes("@") ? "address" : "domain";
}

/** A concrete recipient (after substitution) in its canonical form, or null when invalid. */
export function canonicalRecipient(recipient: string): { kind: RecipientKind; value: string } | null {
  const kind = recipientKind(recipient);
  if (kind === "webhook") {
    try {
      const url = new URL(recipient);
      if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname || url.username || url.password) return null;
      return { kind, value: url.href };
    } catch {
      return null;
    }
  }
  if (kind === "address") {
    const mailbox = parseMailbox(recipient);
    return mailbox && !mailbox.isLiteral ? { kind, value: mailbox.address } : null;
  }
  const domain = normalizeDomain(recipient);
  return domain && domain.includes(".") ? { kind, value: domain } : null;
}

const TEMPLATE = /\$([1-9])/g;
export const MAX_DESCRIPTION = 500;
/** Recipients longer than this are no address, domain or sane URL. */
const MAX_RECIPIENT = 2048;

export interface ValidationOptions {
  /** Webhook URLs on loopback/private/link-local addresses are allowed (webhooks.allow_private). */
  allowPrivateWebhooks?: boolean;
  /** What domains follow until they set their own (decides whether a subdomain may get aliases). */
  addressDefaults?: AddressDefaults;
  /** The caller made the subdomain up (a random one), so the domain's subdomain matching is not asked. */
  subdomainAllowed?: boolean;
}

export async function validateAlias(input: AliasInput, settings: DomainSettings = DEFAULT_DOMAIN_SETTINGS, options: ValidationOptions = {}): Promise<Omit<AliasRule, "id" | "domain" | "subdomain">> {
  const disabled = input.disabled ?? null;
  const global = !!input.global;
  let pattern: string;
  switch (input.matcher) {
    case "exact": {
      pattern = input.pattern.trim().toLowerCase();
      if (!parseMailbox(`${pattern}@example.com`)) throw new UserError("invalid", `"${input.pattern}" is not a valid local part (the part before @)`, "pattern");
      if (global) throw new UserError("invalid", "only regex aliases take the g flag", "global");
      break;
    }
    case "catch-all":
      pattern = "*";
      if (!settings.catchAll) throw new UserError("invalid", "catch-all aliases are turned off for this domain", "matcher");
      if (global) throw new UserError("invalid", "only regex aliases take the g flag", "global");
      break;
    case "regex": {
      pattern = input.pattern;
      const problem = patternProblem(pattern);
      if (problem) throw new UserError("invalid", `regex /${pattern}/ refused: ${problem}`, "pattern");
      break;
    }
    default:
      throw new UserError("invalid", `unknown matcher "${String(input.matcher)}" (exact, regex or catch-all)`, "matcher");
  }

  const recipients: string[] = [];
  for (const raw of input.recipients) {
    const recipient = raw.trim();
    if (recipient === "") continue;
    if (recipient.length > MAX_RECIPIENT) throw new UserError("invalid", `a recipient is longer than ${MAX_RECIPIENT} characters`, "recipients");
    const usesCaptures = TEMPLATE.test(recipient);
    TEMPLATE.lastIndex = 0;
    if (usesCaptures && input.matcher !== "regex") throw new UserError("invalid", `"${recipient}" uses $1…$9, which only regex aliases provide`, "recipients");
    // A template is checked with a sample value in place of each capture.
    const canonical = canonicalRecipient(usesCaptures ? recipient.replace(TEMPLATE, "x") : recipient);
    if (!canonical) throw new UserError("invalid", `"${recipient}" is not an email address, domain name or http(s) URL`, "recipients");
    const value = usesCaptures ? recipient : canonical.value;
    if (canonical.kind === "webhook" && !options.allowPrivateWebhooks) {
      const problem = webhookUrlProblem(usesCaptures ? recipient.replace(TEMPLATE, "x") : value);
      if (problem) throw new UserError("invalid", problem, "recipients");
    }
    if (!recipients.some((r) => r.toLowerCase() === value.toLowerCase())) recipients.push(value);
  }
  if (recipients.length === 0 && disabled === null) throw new UserError("invalid", "an enabled alias needs at least one recipient", "recipients");
  if (recipients.length > settings.maxTargets) {
    throw new UserError("invalid", `${recipients.length} recipients is more than this domain's limit of ${settings.maxTargets}`, "recipients");
  }
  const description = (input.description ?? "").trim();
  if (description.length > MAX_DESCRIPTION) throw new UserError("invalid", `the description is longer than ${MAX_DESCRIPTION} characters`, "description");
  return { matcher: input.matcher, pattern, global, recipients, disabled, description };
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The labels in front of a managed domain (`team`, `dev.team`): letters,
 * digits and inner hyphens, at most 63 per label and 253 for the whole name
 * (RFC 1035). Throws a UserError on the `subdomain` field.
 */
export function parseSubdomain(input: string, domain: string): string {
  const sub = input.trim().toLowerCase().replace(/\.$/, "");
  if (sub === "") return "";
  const bad = sub.split(".").find((label) => !LABEL.test(label));
  if (bad !== undefined) {
    const why = bad.length > 63 ? `the label "${bad.slice(0, 20)}…" is longer than 63 characters` : `"${bad}" is not a valid label (letters, digits and inner hyphens)`;
    throw new UserError("invalid", `subdomain ${why}`, "subdomain");
  }
  const full = `${sub}.${domain}`;
  if (full.length > 253) throw new UserError("invalid", `${full.slice(0, 40)}… is longer than 253 characters`, "subdomain");
  return sub;
}

/** How an alias is named to people: `hello`, `*` or `/^re$/g`. */
export function aliasLabel(rule: Pick<AliasRule, "matcher" | "pattern" | "global">): string {
  if (rule.matcher === "regex") return `/${rule.pattern}/${rule.global ? "g" : ""}`;
  return rule.pattern;
}

/** `x7k2p9q1.example.com` for an alias on a subdomain, else the domain. */
export function placeName(rule: Pick<AliasRule, "domain" | "subdomain">): string {
  return rule.subdomain ? `${rule.subdomain}.${rule.domain}` : rule.domain;
}

/** The inverse of aliasLabel: `*`, `/re/`, `/re/g` or a local part. */
export function parseAliasName(name: string): Pick<AliasInput, "matcher" | "pattern" | "global"> {
  if (name === "*") return { matcher: "catch-all", pattern: "*" };
  const regex = /^\/(.+)\/(g?)$/s.exec(name);
  if (regex) return { matcher: "regex", pattern: regex[1]!, global: regex[2] === "g" };
  return { matcher: "exact", pattern: name };
}
