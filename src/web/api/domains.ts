// /domains: list, create, read, change settings, delete, DNS records with
// their live status, webhook and DKIM key rotation.
import { z } from "@hono/zod-openapi";
import { mark } from "../../auth/dns-check.ts";
import type { Config } from "../../config/index.ts";
import { effectiveSettings } from "../../aliases/rules.ts";
import { domainSettings, findDomain, listDomains, parseDomainName } from "../../store/domains.ts";
import type { Domain as DomainRow } from "../../store/schema.ts";
import { type Api, ApiError, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { isoTime } from "../../service/json.ts";
import { DnsRecordBody, DomainBody, DomainCreate, DomainName, DomainSettingsPatch } from "./schemas.ts";

export function domainJson(row: DomainRow, config: Config): z.infer<typeof DomainBody> {
  const s = domainSettings(row);
  const e = effectiveSettings(s, config.addresses);
  return {
    name: row.name,
    catch_all: s.catchAll,
    max_targets: s.maxTargets,
    delivery_port: s.deliveryPort,
    accept_subdomains: s.acceptSubdomains,
    random_subdomain: s.randomSubdomain,
    random_subdomain_length: s.randomSubdomainLength,
    scan_spam: s.scanSpam,
    effective: { accept_subdomains: e.acceptSubdomains, random_subdomain: e.randomSubdomain },
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}


export function mountDomainRoutes(api: Api, { db, config, services, liveResolver }: ApiDeps): void {
  const existing = async (input: string) => {
    const row = await findDomain(db, parseDomainName(input));
    if (!row) throw new ApiError(404, "not_found", `domain ${input} is not managed here`);
    return row;
  };

  api.openapi(
    scopedRoute({ method: "get", path: "/domains", tags: ["domains"], summary: "List managed domains", scope: "read", responses: { 200: json(z.object({ items: z.array(DomainBody) }), "The domains, by name") } }),
    async (c) => c.json({ items: (await listDomains(db)).map((d) => domainJson(d, config)) }, 200),
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/domains",
      tags: ["domains"],
      summary: "Add a domain (with its first DKIM key)",
      scope: "write",
      extraErrors: [409, 422],
      request: body(DomainCreate),
      responses: { 201: json(DomainBody, "The new domain; publish its DNS records next") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const row = await services.domains.add(tokenActor(c), input.name, input.dkim_selector ? { selector: input.dkim_selector } : {});
      return c.json(domainJson(row, config), 201);
    },
  );

  api.openapi(
    scopedRoute({ method: "get", path: "/domains/{name}", tags: ["domains"], summary: "One domain and its settings", scope: "read", extraErrors: [404], request: { params: DomainName }, responses: { 200: json(DomainBody, "The domain") } }),
    async (c) => c.json(domainJson(await existing(c.req.valid("param").name), config), 200),
  );

  api.openapi(
    scopedRoute({
      method: "patch",
      path: "/domains/{name}",
      tags: ["domains"],
      summary: "Change a domain's settings",
      scope: "write",
      extraErrors: [404, 422],
      request: { params: DomainName, ...body(DomainSettingsPatch) },
      responses: { 200: json(DomainBody, "The domain after the change") },
    }),
    async (c) => {
      const { name } = c.req.valid("param");
      await existing(name);
      const p = c.req.valid("json");
      const changes = {
        ...(p.catch_all !== undefined ? { catchAll: p.catch_all } : {}),
        ...(p.max_targets !== undefined ? { maxTargets: p.max_targets } : {}),
        ...(p.delivery_port !== undefined ? { deliveryPort: p.delivery_port } : {}),
        ...(p.accept_subdomains !== undefined ? { acceptSubdomains: p.accept_subdomains } : {}),
        ...(p.random_subdomain !== undefined ? { randomSubdomain: p.random_subdomain } : {}),
        ...(p.random_subdomain_length !== undefined ? { randomSubdomainLength: p.random_subdomain_length } : {}),
        ...(p.scan_spam !== undefined ? { scanSpam: p.scan_spam } : {}),
      };
      return c.json(domainJson(await services.domains.update(tokenActor(c), name, changes), config), 200);
    },
  );

  api.openapi(
    scopedRoute({ method: "delete", path: "/domains/{name}", tags: ["domains"], summary: "Stop managing a domain (its aliases go too)", scope: "write", extraErrors: [404], request: { params: DomainName }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.domains.remove(tokenActor(c), (await existing(c.req.valid("param").name)).name);
      return c.body(null, 204);
    },
  );

  api.openapi(
    scopedRoute({
      method: "get",
      path: "/domains/{name}/dns",
      tags: ["domains"],
      summary: "The DNS records to publish, each checked against DNS now (as `mailferry dns check`; a pending DKIM key DNS serves starts signing)",
      scope: "read",
      extraErrors: [404],
      request: { params: DomainName },
      responses: { 200: json(z.object({ records: z.array(DnsRecordBody) }), "Expected records with what DNS has") },
    }),
    async (c) => {
      const row = await existing(c.req.valid("param").name);
      const report = await services.domains.checkDns([row.name], (n, t) => liveResolver.resolve(n, t));
      const checks = report.sections.filter((s) => s.domain === row.name).flatMap((s) => s.checks);
      const optional = (k: (typeof checks)[number]) => ({ ...(k.error ? { error: k.error } : {}), ...(k.note ? { note: k.note } : {}) });
      const records = checks.map((k) => ({ purpose: k.record.purpose, type: k.record.type, name: k.record.name, value: k.record.value, ttl: k.record.ttl, level: k.record.level, status: k.status, mark: mark(k), found: k.found, ...optional(k) }));
      return c.json({ records }, 200);
    },
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/domains/{name}/webhook-key",
      tags: ["domains"],
      summary: "Rotate the key that signs webhook requests (X-Webhook-Signature)",
      scope: "write",
      extraErrors: [404],
      request: { params: DomainName },
      responses: { 200: json(z.object({ webhook_key: z.string() }), "The new key") },
    }),
    async (c) => c.json({ webhook_key: await services.domains.rotateWebhookKey(tokenActor(c), (await existing(c.req.valid("param").name)).name) }, 200),
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/domains/{name}/dkim-rotate",
      tags: ["domains"],
      summary: "Make a new DKIM key, pending: it signs once DNS serves its record (checked every 10 minutes and by GET /domains/{name}/dns), or after dkim-activate",
      scope: "write",
      extraErrors: [404, 409],
      request: { params: DomainName },
      responses: { 200: json(z.object({ selector: z.string() }), "The new key's selector; publish its record") },
    }),
    async (c) => c.json({ selector: (await services.domains.rotateDkim(tokenActor(c), (await existing(c.req.valid("param").name)).name)).selector }, 200),
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/domains/{name}/dkim-activate",
      tags: ["domains"],
      summary: "Sign with the pending DKIM key now, without waiting for DNS to serve its record (the signing key is retired, still published)",
      scope: "write",
      extraErrors: [404, 409],
      request: { params: DomainName },
      responses: { 200: json(z.object({ selector: z.string(), retired: z.array(z.string()) }), "The key that signs now, and the ones it replaced") },
    }),
    async (c) => c.json(await services.domains.activateDkim(tokenActor(c), (await existing(c.req.valid("param").name)).name), 200),
  );
}
