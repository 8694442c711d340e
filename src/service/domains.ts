// Managed domains: adding and removing them, their settings, their DNS
// records and DKIM keys, and the live check of what DNS serves.
import { checkDns } from "../auth/dns-check.ts";
import { type DnsRecord, domainRecords, fqdn, type Lookup, mtaStsMode } from "../auth/records.ts";
import type { Config } from "../config/index.ts";
import { serverKeyRecord } from "../delivery/originated.ts";
import { UserError } from "../errors.ts";
import { type DomainSettings, effectiveSettings } from "../aliases/rules.ts";
import { hasSubdomainAliases } from "../store/aliases.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { activatePendingKey, listDkimKeys, removeDkimKey, rotateDkimKey } from "../store/dkim-keys.ts";
import { nodeHostnames } from "../store/nodes.ts";
import { addDomain, domainSettings, findDomain, parseDomainName, removeDomain, updateDomainSettings, webhookKey } from "../store/domains.ts";
import { activatePublishedKeys } from "./dkim-rotation.ts";

export function domainService({ db, config, now }: { db: DB; config: Config; now: () => number }) {
  return {
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
    /** The DNS records to publish for a domain (shown by the UI, the API and the CLI), with one MX per node (docs/multi-node.md). */
    async records(name: string) {
      const row = await findDomain(db, parseDomainName(name));
      if (!row) throw new UserError("not_found", `domain ${name} is not managed here`, "name");
      const settings = effectiveSettings(domainSettings(row), config.addresses);
      const records = domainRecords({
        domain: row.name,
        hostname: config.hostname,
        nodes: await nodeHostnames(db, config.hostname),
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
      // Another node's own SPF record authorizes that node, not this one: its own dns check judges it.
      const otherNodes = new Set((await nodeHostnames(db, config.hostname)).filter((node) => node !== config.hostname).map(fqdn));
      const ours = (records: DnsRecord[]) => records.filter((r) => !otherNodes.has(r.name));
      const domains = await Promise.all(names.map(async (name) => ({ name, records: ours(await this.records(name)) })));
      return checkDns(domains, config.hostname, lookup);
    },
  };
}
