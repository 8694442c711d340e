// The routing decision for one RCPT TO: a pure function of the recipient and
// the routing configuration, so every rule of docs/aliases.md is unit-testable.
import { type Mailbox, parseMailbox } from "../mail/address.ts";
import type { Decision, Facts, Reason } from "../mail/decision.ts";
import { type Reply, reply } from "../mail/reply.ts";
import { type AliasRule, aliasLabel, canonicalRecipient, type DomainRouting, type RoutingConfig, recipientKind, type Verification } from "../aliases/rules.ts";

/** The alias that produced a target or a decision. */
export interface AliasRef {
  id: number;
  domain: string;
  /** `hello`, `*` or `/re/`. */
  label: string;
}

export type Target =
  | { kind: "address"; address: string; domain: string; port: number | null; alias: AliasRef }
  | { kind: "webhook"; url: string; alias: AliasRef };

export type Route =
  /**
   * Deliver to these targets (unique, in rule order); `unverified`: destinations left out until
   * they are verified; `captures` ($1…) of a regex rule and the `tag` of plus-addressing, for the story.
   */
  | { action: "deliver"; targets: Target[]; alias: AliasRef; unverified?: string[]; captures?: string[]; tag?: string }
  /** A disabled alias that accepts and discards (`!alias`). */
  | { action: "drop"; alias: AliasRef }
  /** Refuse the recipient: this reply, for this reason. */
  | (Decision & { action: "refuse"; alias?: AliasRef });

/** Expansion through aliases on managed domains goes at most this deep. */
export const MAX_DEPTH = 5;

/**
 * RFC 5321 §4.5.1: `postmaster` without a domain must be accepted. It is the
 * postmaster of this server's host name: postmaster@ the host name, or the
 * nearest managed domain above it (mx.example.com → example.com); when none is
 * managed, postmaster@ the first managed domain. Any other recipient is left as it is.
 */
export function postmasterRecipient(recipient: string, hostname: string, config: RoutingConfig): string {
  if (recipient.toLowerCase() !== "postmaster") return recipient;
  const labels = hostname.split(".");
  const own = labels.map((_, i) => labels.slice(i).join(".")).find((name) => config.domains.has(name));
  const domain = own ?? config.domains.keys().next().value;
  return domain ? `postmaster@${domain}` : recipient;
}

export function route(recipient: string, config: RoutingConfig): Route {
  const mailbox = parseMailbox(recipient);
  if (!mailbox) return refuse(reply(501, "5.1.3", "Bad recipient address syntax"), "bad_syntax");
  const domain = mailbox.isLiteral ? null : routingDomain(mailbox.domain, config);
  if (!domain) return refuse(reply(550, "5.7.1", `Relaying denied: ${mailbox.domain} is not a domain served here`), "relay_denied");
  const unverified = new Set<string>();
  const outcome = expand(mailbox, domain, config, [key(mailbox.address)], unverified);
  if (outcome.action !== "deliver") return outcome;
  if (unverified.size > 0) {
    const list = [...unverified].join(", ");
    // Temporary: the sender retries, and the mail arrives once the destination confirms.
    if (outcome.targets.length === 0) {
      // The facts name them, so the log can offer to resend the verification mail.
      return refuse(reply(450, "4.1.1", `${mailbox.address}: forwarding destination ${list} is not verified yet`), "unverified_destination", outcome.alias, { unverified: [...unverified] });
    }
    outcome.unverified = [...unverified];
  }
  const limit = domain.settings.maxTargets;
  if (outcome.targets.length > limit) {
    return refuse(
      reply(550, "5.5.3", `${mailbox.address} forwards to ${outcome.targets.length} addresses, more than the limit of ${limit}`),
      "too_many_targets",
      outcome.alias,
    );
  }
  return outcome;
}

/** The managed domain that routes `name`: itself, or its nearest managed ancestor if that accepts subdomains. */
export function routingDomain(name: string, config: RoutingConfig): DomainRouting | null {
  const own = config.domains.get(name);
  if (own) return own;
  const labels = name.split(".");
  for (let i = 1; i < labels.length - 1; i++) {
    const ancestor = config.domains.get(labels.slice(i).join("."));
    if (ancestor) return ancestor.settings.acceptSubdomains ? ancestor : null;
  }
  return null;
}

interface Match {
  rule: AliasRule;
  /** Regex captures ($1…$9), empty for other matchers. */
  captures: (string | null)[];
  /** The `+tag` when the match was on the local part without it. */
  tag: string | null;
}

/** Precedence: exact > regex (creation order) > catch-all; each tried with the full local part, then without its +tag. */
export function matchAlias(local: string, domain: DomainRouting): Match | null {
  const plus = local.indexOf("+");
  const base = plus > 0 ? local.slice(0, plus) : null;
  const tag = base === null ? null : local.slice(plus + 1);
  const exact = domain.exact.get(local.toLowerCase());
  if (exact) return { rule: exact, captures: [], tag: null };
  const exactBase = base === null ? undefined : domain.exact.get(base.toLowerCase());
  if (exactBase) return { rule: exactBase, captures: [], tag };
  for (const candidate of base === null ? [local] : [local, base]) {
    for (const { rule, compiled } of domain.regex) {
      const captures = compiled.exec(candidate);
      if (captures) return { rule, captures, tag: candidate === local ? null : tag };
    }
  }
  if (domain.catchAll && domain.settings.catchAll) return { rule: domain.catchAll, captures: [], tag };
  return null;
}

function expand(mailbox: Mailbox, domain: DomainRouting, config: RoutingConfig, chain: string[], unverified: Set<string>): Route {
  const inherited = domain.parent?.settings.acceptSubdomains ? domain.parent : null;
  const match = matchAlias(mailbox.local, domain) ?? (inherited && matchAlias(mailbox.local, inherited));
  if (!match) return refuse(reply(550, "5.1.1", `${mailbox.address}: no such recipient here`), "unknown_recipient");
  const { rule } = match;
  const alias: AliasRef = { id: rule.id, domain: rule.domain, label: aliasLabel(rule) };
  switch (rule.disabled) {
    case "drop":
      return { action: "drop", alias };
    case "soft":
      return refuse(reply(421, "4.2.1", `${mailbox.address} is temporarily disabled, try again later`), "alias_disabled", alias);
    case "hard":
      return refuse(reply(550, "5.2.1", `${mailbox.address} is disabled`), "alias_disabled", alias);
  }

  const targets: Target[] = [];
  const seen = new Set<string>();
  const add = (target: Target) => {
    const id = target.kind === "address" ? key(target.address) : target.url;
    if (!seen.has(id)) {
      seen.add(id);
      targets.push(target);
    }
  };
  for (const template of rule.recipients) {
    const concrete = canonicalRecipient(substitute(template, match.captures));
    if (!concrete) return refuse(reply(550, "5.1.3", `alias ${alias.label} of ${rule.domain} produced an invalid recipient for ${mailbox.address}`), "bad_alias_target", alias);
    if (concrete.kind === "webhook") {
      add({ kind: "webhook", url: concrete.value, alias });
      continue;
    }
    const destination = concrete.kind === "domain" ? `${mailbox.local}@${concrete.value}` : concrete.value;
    const next = parseMailbox(concrete.kind === "domain" ? destination : withTag(destination, match.tag));
    if (!next) return refuse(reply(550, "5.1.3", `alias ${alias.label} of ${rule.domain} produced an invalid recipient for ${mailbox.address}`), "bad_alias_target", alias);
    const managed = routingDomain(next.domain, config);
    if (!managed) {
      // A +tag added by plus-addressing needs no confirmation of its own.
      if (awaitsConfirmation(config.verification, rule.id, destination)) unverified.add(key(destination));
      else add({ kind: "address", address: next.address, domain: next.domain, port: domain.settings.deliveryPort, alias });
      continue;
    }
    // An alias on a managed domain: the parent is replaced by its children.
    if (chain.includes(key(next.address))) return refuse(reply(550, "5.4.6", `routing loop: ${[...chain, key(next.address)].join(" -> ")}`), "routing_loop", alias);
    if (chain.length > MAX_DEPTH) return refuse(reply(550, "5.4.6", `aliases nested deeper than ${MAX_DEPTH} levels at ${next.address}`), "routing_loop", alias);
    const child = expand(next, managed, config, [...chain, key(next.address)], unverified);
    if (child.action === "refuse") return child;
    if (child.action === "deliver") child.targets.forEach(add);
  }
  const captures = match.captures.slice(1).map((c) => c ?? "");
  return { action: "deliver", targets, alias, ...(captures.length ? { captures } : {}), ...(match.tag ? { tag: match.tag } : {}) };
}

function awaitsConfirmation(verification: Verification | null, aliasId: number, destination: string): boolean {
  if (!verification || verification.confirmed.has(key(destination))) return false;
  return verification.aliases === "all" || verification.aliases.has(aliasId);
}

/** `$1`…`$9` from the regex captures; missing groups are empty. URL templates get them percent-encoded. */
function substitute(template: string, captures: (string | null)[]): string {
  if (captures.length === 0) return template;
  const url = recipientKind(template) === "webhook";
  return template.replace(/\$([1-9])/g, (_, n: string) => {
    const value = captures[Number(n)] ?? "";
    return url ? encodeURIComponent(value) : value;
  });
}

/** Plus-addressing: `user@gmail.com` + tag → `user+tag@gmail.com`; a recipient with its own tag keeps it. */
function withTag(address: string, tag: string | null): string {
  if (!tag) return address;
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  return local.includes("+") ? address : `${local}+${tag}${address.slice(at)}`;
}

function key(address: string): string {
  return address.toLowerCase();
}

function refuse(r: Reply, reason: Reason, alias?: AliasRef, facts?: Facts): Route {
  return { action: "refuse", reply: r, reason, ...(alias ? { alias } : {}), ...(facts ? { facts } : {}) };
}
