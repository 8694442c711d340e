// Creating an address (cloudflare_temp_email behaviour): an exact alias on a
// managed domain, optionally on a random or a named subdomain of it.
import { randomInt } from "node:crypto";
import type { Config } from "../config/index.ts";
import { renameField, UserError } from "../errors.ts";
import { type AliasRule, effectiveSettings, parseSubdomain, placeName } from "../aliases/rules.ts";
import { addAlias } from "../store/aliases.ts";
import type { DB } from "../store/db.ts";
import { domainSettings, findDomain } from "../store/domains.ts";
import { normalizeDomain } from "../mail/domain.ts";

export interface AddressRequest {
  /** The local part; omitted: a random one. */
  name?: string;
  domain: string;
  /** Labels in front of the domain, e.g. `team` or `dev.team`; needs the domain's subdomain matching. */
  subdomain?: string;
  /** Append a random label; omitted: the domain's setting (or the configuration's default). */
  random_subdomain?: boolean;
  targets: string[];
  description?: string;
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
export const RANDOM_NAME_LENGTH = 10;

export function randomLabel(length: number): string {
  return Array.from({ length }, () => ALPHABET[randomInt(ALPHABET.length)]).join("");
}

/** The alias to create, decided from the request and the domain's settings; throws a UserError naming the field. */
export async function planAddress(db: DB, config: Config, request: AddressRequest): Promise<{ domain: string; subdomain: string; name: string; random: boolean }> {
  const name = normalizeDomain(request.domain);
  const domain = name ? await findDomain(db, name) : undefined;
  if (!domain) throw new UserError("invalid", `${request.domain} is not a managed domain`, "domain");
  const settings = effectiveSettings(domainSettings(domain), config.addresses);
  const explicit = request.subdomain?.trim() ? parseSubdomain(request.subdomain, domain.name) : "";
  if (explicit && request.random_subdomain) throw new UserError("invalid", "give a subdomain or ask for a random one, not both", "random_subdomain");
  if (explicit && !settings.acceptSubdomains) throw new UserError("invalid", `${domain.name} does not allow addresses on a named subdomain (subdomain matching is off)`, "subdomain");
  const random = request.random_subdomain ?? (explicit ? false : settings.randomSubdomain);
  const subdomain = random ? randomLabel(settings.randomSubdomainLength) : explicit;
  return { domain: domain.name, subdomain, name: request.name?.trim() || randomLabel(RANDOM_NAME_LENGTH), random };
}

export async function createAddress(db: DB, config: Config, request: AddressRequest, confirmTargets = false): Promise<{ address: string; alias: AliasRule }> {
  const plan = await planAddress(db, config, request);
  const place = plan.subdomain ? `${plan.subdomain}.${plan.domain}` : plan.domain;
  try {
    const alias = await addAlias(
      db,
      place,
      { matcher: "exact", pattern: plan.name, recipients: request.targets, description: request.description ?? "" },
      { allowPrivateWebhooks: config.webhooks.allowPrivate, addressDefaults: config.addresses, subdomainAllowed: plan.random, confirmTargets },
    );
    return { address: `${alias.pattern}@${placeName(alias)}`, alias };
  } catch (err) {
    throw renameField(err, { pattern: "name", recipients: "targets" });
  }
}
