// The changes an admin can make, in one place for the UI, the API and the
// CLI: each validates through the store, writes the audit log with who did
// it, and registers forwarding destinations that need verification.
import { checkDns } from "../auth/dns-check.ts";
import { domainRecords, type Lookup, mtaStsMode } from "../auth/records.ts";
import type { Config, ConfigInput } from "../config/index.ts";
import { serverKeyRecord } from "../delivery/originated.ts";
import { UserError } from "../errors.ts";
import { type AliasInput, type DomainSettings, aliasLabel, effectiveSettings, placeName, type ValidationOptions } from "../aliases/rules.ts";
import { addDeny, forgetGreylist, removeDeny } from "../store/senders.ts";
import { addAlias, aliasById, findAliasByName, hasSubdomainAliases, importAliases, removeAliasById, updateAlias, type WriteOptions } from "../store/aliases.ts";
import { addAllow, removeAllow } from "../store/allowlist.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { activatePendingKey, listDkimKeys, removeDkimKey, rotateDkimKey } from "../store/dkim-keys.ts";
import { addDomain, domainSettings, findDomain, parseDomainName, removeDomain, updateDomainSettings, webhookKey } from "../store/domains.ts";
import { loadSecret, VERIFY_SECRET_FILE } from "../store/secrets.ts";
import { createToken, revokeToken } from "../store/tokens.ts";
import { setVacation, type VacationInput, vacationOf } from "../store/vacations.ts";
import { accountService } from "./accounts.ts";
import { type AddressRequest, createAddress } from "./addresses.ts";
import { destinationService, type Waiting } from "./destinations.ts";
import { activatePublishedKeys } from "./dkim-rotation.ts";
import { settingsService } from "./settings.ts";
import { type Forwarding, testMessageService } from "./test-message.ts";

export interface ServiceDeps {
  db: DB;
  /** Read on each use, so settings changed at run time apply. */
  config: Config;
  /** How `config` was loaded (environment, flags, working dir): settings changes reload it the same way. */
  configInput: ConfigInput;
  /** Queues mail mailferry writes itself: the outbox in the server; from the CLI its table, which the server sends from. */
  queueMail: (to: string, raw: Buffer) => Promise<void>;
  /** Where recipients of a verification mail open its link. */
  publicUrl: () => string | null;
  /** The server's router and relay, for test messages (the CLI has none). */
  forwarding?: Forwarding;
  now?: () => number;
}

export function createServices(deps: ServiceDeps) {
  const { db, config } = deps;
  const now = deps.now ?? Date.now;
  const destinations = destinationService({ db, config, verifyKey: loadSecret(config.dataDir, VERIFY_SECRET_FILE), publicUrl: deps.publicUrl, queueMail: deps.queueMail, now });
  const validation = (): ValidationOptions => ({ allowPrivateWebhooks: config.webhooks.allowPrivate, addressDefaults: config.addresses });
  // An alias saved by an actor whose word does not confirm destinations waits for its owners (docs/aliases.md).
  const writing = (actor: Actor): WriteOptions => ({ ...validation(), confirmTargets: !actor.confirmsDestinations });

  return {
    destinations,
    settings: settingsService({ db, config, configInput: deps.configInput }),
    testMessage: testMessageService({ db, config, now, ...(deps.forwarding ? { forwarding: deps.forwarding } : {}) }),
    accounts: accountService(db, config.dataDir),

    domains: {
      async add(actor: Actor, name: string, options: { selector?: string } = {}) {
        const domain = await addDomain(db, name, options);
        await audit(db, actor, "domain.add", domain.name, null, { name: domain.name });
        return domain;
      },
      async remove(actor: Actor, name: string) {
        const before = await findDomain(db, parseDomainName(name));
        await removeDomain(db, name);
        await audit(db, actor, "domain.remove", before!.name, { name: before!.name, ...domainSettings(before!) }, null);
      },
      async update(actor: Actor, name: string, changes: Partial<DomainSettings>) {
        const before = await findDomain(db, parseDomainName(name));
        if (!before) throw new UserError("not_found", `domain ${name} does not exist`, "name");
        const after = await updateDomainSettings(db, name, changes);
        await audit(db, actor, "domain.settings", after.name, domainSettings(before), domainSettings(after));
        return after;
      },
      async rotateWebhookKey(actor: Actor, name: string) {
        const key = await webhookKey(db, name, true);
        await audit(db, actor, "domain.webhook_key.rotate", parseDomainName(name));
        return key;
      },
      /** The DNS records to publish for a domain (shown by the UI, the API and the CLI). */
      async records(name: string) {
        const row = await findDomain(db, parseDomainName(name));
        if (!row) throw new UserError("not_found", `domain ${name} is not managed here`, "name");
        const settings = effectiveSettings(domainSettings(row), config.addresses);
        const records = domainRecords({
          domain: row.name,
          hostname: config.hostname,
          srsDomain: config.srs.domain,
          dkimKeys: await listDkimKeys(db, row.name),
          mtaStsMode: mtaStsMode(config.tls.cert !== null || config.acme.enabled),
          subdomains: settings.acceptSubdomains || settings.randomSubdomain || (await hasSubdomainAliases(db, row.id)),
          now: now(),
        });
        // Like the SRS domain's SPF, a host name record listed with every domain (dns check shows it once).
        const serverKey = await serverKeyRecord(db, config.hostname);
        return serverKey ? [...records, serverKey] : records;
      },
      async rotateDkim(actor: Actor, name: string, selector?: string) {
        const key = await rotateDkimKey(db, name, selector);
        await audit(db, actor, "domain.dkim.rotate", parseDomainName(name), null, { selector: key.selector });
        return key;
      },
      /** Signing switches to the pending key without waiting for DNS to serve it. */
      async activateDkim(actor: Actor, name: string) {
        const done = await activatePendingKey(db, name, now());
        await audit(db, actor, "domain.dkim.activate", parseDomainName(name), { signing: done.retired }, { signing: done.selector, reason: "activated by hand" });
        return done;
      },
      async removeDkim(actor: Actor, name: string, selector: string, options: { force?: boolean } = {}) {
        const key = await removeDkimKey(db, name, selector, { ...options, now: now() });
        await audit(db, actor, "domain.dkim.remove", parseDomainName(name), { selector: key.selector }, null);
        return key;
      },
      /**
       * What `dns check`, the admin UI and the API show: pending DKIM keys whose
       * record DNS now serves start signing first, then every record is judged.
       */
      async checkDns(names: string[], lookup: Lookup) {
        await activatePublishedKeys(db, lookup, now());
        const domains = await Promise.all(names.map(async (name) => ({ name, records: await this.records(name) })));
        return checkDns(domains, config.hostname, lookup);
      },
    },

    aliases: {
      async add(actor: Actor, domain: string, input: AliasInput) {
        await destinations.checkConfirmable(actor, input.recipients);
        const rule = await addAlias(db, domain, input, writing(actor));
        await audit(db, actor, "alias.add", `${aliasLabel(rule)}@${placeName(rule)}`, null, rule);
        return { alias: rule, waiting: await destinations.register(actor, rule.recipients) };
      },
      async update(actor: Actor, id: number, input: Pick<AliasInput, "recipients" | "disabled" | "description">) {
        await destinations.checkConfirmable(actor, input.recipients);
        const before = await aliasById(db, id);
        const after = await updateAlias(db, id, input, writing(actor));
        await audit(db, actor, "alias.update", `${aliasLabel(after)}@${placeName(after)}`, before, after);
        return { alias: after, waiting: await destinations.register(actor, after.recipients) };
      },
      /** The alias's vacation reply (an auto-reply while its owner is away). */
      async setVacation(actor: Actor, place: string, name: string, input: VacationInput) {
        const alias = await findAliasByName(db, place, name);
        const before = (await vacationOf(db, alias.id)) ?? null;
        const after = await setVacation(db, place, name, input);
        await audit(db, actor, "alias.vacation", `${aliasLabel(alias)}@${placeName(alias)}`, before, after);
        return after;
      },
      async remove(actor: Actor, id: number) {
        const removed = await removeAliasById(db, id);
        await audit(db, actor, "alias.remove", `${aliasLabel(removed)}@${placeName(removed)}`, removed, null);
        return removed;
      },
      async import(actor: Actor, domain: string, text: string, options: { apply: boolean; replace?: boolean }) {
        const dryRun = await importAliases(db, domain, text, { ...validation(), apply: false });
        await destinations.checkConfirmable(actor, dryRun.aliases.flatMap((a) => a.recipients));
        const report = await importAliases(db, domain, text, { ...options, ...writing(actor) });
        let waiting: Waiting[] = [];
        if (report.applied) {
          await audit(db, actor, "alias.import", report.domain, null, { aliases: report.aliases.length, replace: !!options.replace });
          waiting = await destinations.register(actor, report.aliases.flatMap((a) => a.recipients));
        }
        return { report, waiting };
      },
    },

    addresses: {
      async create(actor: Actor, request: AddressRequest) {
        await destinations.checkConfirmable(actor, request.targets);
        const created = await createAddress(db, config, request, !actor.confirmsDestinations);
        await audit(db, actor, "address.create", created.address, null, created.alias);
        return { ...created, waiting: await destinations.register(actor, created.alias.recipients) };
      },
    },

    lists: {
      async deny(actor: Actor, value: string, options: { reason?: string; expiresAt?: number | null }) {
        const entry = await addDeny(db, value, options);
        await audit(db, actor, "deny.add", entry.value, null, entry);
        return entry;
      },
      async undeny(actor: Actor, value: string) {
        await removeDeny(db, value);
        await audit(db, actor, "deny.remove", value);
      },
      async allow(actor: Actor, value: string, note = "") {
        const entry = await addAllow(db, value, note);
        await audit(db, actor, "allow.add", entry.value, null, entry);
        return entry;
      },
      async disallow(actor: Actor, value: string) {
        await removeAllow(db, value);
        await audit(db, actor, "allow.remove", value);
      },
      async forgetGreylist(actor: Actor, key: string) {
        await forgetGreylist(db, key);
        await audit(db, actor, "greylist.forget", key);
      },
    },

    tokens: {
      async create(actor: Actor, name: string, scope: string) {
        const created = await createToken(db, name, scope, now());
        await audit(db, actor, "token.create", name, null, created.info);
        return created;
      },
      async revoke(actor: Actor, name: string) {
        const info = await revokeToken(db, name, now());
        await audit(db, actor, "token.revoke", name, null, info);
        return info;
      },
    },
  };
}

export type Services = ReturnType<typeof createServices>;
