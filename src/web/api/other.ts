// /destinations, /addresses, /log, /stats, /denylist, /allowlist, /settings
// and /tokens.
import { z } from "@hono/zod-openapi";
import { ConfigError, loadConfigWithOrigins, SETTINGS } from "../../config/index.ts";
import { duration } from "../../config/values.ts";
import { writeSettings } from "../../config/write.ts";
import { activeDenylist } from "../../store/senders.ts";
import { listAllow } from "../../store/allowlist.ts";
import { eventById, listEvents } from "../../store/events.ts";
import { dailySeries } from "../../store/stats.ts";
import { listTokens } from "../../store/tokens.ts";
import { destinationJson, eventJson, isoTime, tokenJson, waitingJson } from "../../service/json.ts";
import { aliasJson } from "./aliases.ts";
import { actorOf, type Api, ApiError, body, json, route } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import {
  AddressCreate,
  AddressCreated,
  AllowCreate,
  AllowEntry,
  DenyCreate,
  DenyEntry,
  Destination,
  DestinationAddress,
  DestinationCreate,
  Event,
  ListValue,
  LogQuery,
  nextCursor,
  Page,
  Setting,
  SettingsPatch,
  Stats,
  StatsQuery,
  Token,
  TokenCreate,
  TokenName,
} from "./schemas.ts";

const SECRET_SETTING = /password/;

export function mountOtherRoutes(api: Api, deps: ApiDeps): void {
  const { db, services } = deps;

  // --- destinations ----------------------------------------------------------------------
  api.openapi(
    route({
      method: "get",
      path: "/destinations",
      tags: ["destinations"],
      summary: "Forwarding destinations outside the managed domains, and whether each is verified",
      scope: "read",
      request: { query: Page },
      responses: { 200: json(z.object({ items: z.array(Destination), next_cursor: nextCursor }), "One page") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const rows = await services.destinations.list({ after: Number(q.cursor ?? 0), limit: q.limit + 1 });
      const items = rows.slice(0, q.limit);
      return c.json({ items: items.map(destinationJson), next_cursor: rows.length > q.limit ? String(items.at(-1)!.id) : null }, 200);
    },
  );
  api.openapi(
    route({
      method: "post",
      path: "/destinations",
      tags: ["destinations"],
      summary: "Add a destination and mail it a verification link (valid 24 hours)",
      scope: "write",
      extraErrors: [422],
      request: body(DestinationCreate),
      responses: { 201: json(z.object({ destination: Destination, verification_sent: z.boolean() }), "The destination") },
    }),
    async (c) => {
      const { destination, sent } = await services.destinations.add(actorOf(c), c.req.valid("json").address);
      return c.json({ destination: destinationJson(destination), verification_sent: sent }, 201);
    },
  );
  api.openapi(
    route({ method: "get", path: "/destinations/{address}", tags: ["destinations"], summary: "One destination", scope: "read", extraErrors: [404, 422], request: { params: DestinationAddress }, responses: { 200: json(Destination, "The destination") } }),
    async (c) => c.json(destinationJson(await services.destinations.get(c.req.valid("param").address)), 200),
  );
  api.openapi(
    route({
      method: "post",
      path: "/destinations/{address}/resend",
      tags: ["destinations"],
      summary: "Mail a new verification link",
      scope: "write",
      extraErrors: [404, 409, 422],
      request: { params: DestinationAddress },
      responses: { 202: json(Destination, "Queued") },
    }),
    async (c) => c.json(destinationJson(await services.destinations.resend(actorOf(c), c.req.valid("param").address)), 202),
  );
  api.openapi(
    route({ method: "delete", path: "/destinations/{address}", tags: ["destinations"], summary: "Forget a destination (it must verify again)", scope: "write", extraErrors: [404, 422], request: { params: DestinationAddress }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.destinations.remove(actorOf(c), c.req.valid("param").address);
      return c.body(null, 204);
    },
  );

  // --- addresses -----------------------------------------------------------------------------
  api.openapi(
    route({
      method: "post",
      path: "/addresses",
      tags: ["addresses"],
      summary: "Create an address: an exact alias, optionally on a random or a named subdomain",
      description:
        "random_subdomain appends a random label of the domain's random_subdomain_length (lowercase letters and digits), e.g. name@x7k2p9q1.example.com; omitted, the domain's random_subdomain setting decides. A named subdomain (team, dev.team) needs the domain's subdomain matching. Without name a random local part is made.",
      scope: "write",
      extraErrors: [409, 422],
      request: body(AddressCreate),
      responses: { 201: json(AddressCreated, "The new address") },
    }),
    async (c) => {
      const created = await services.addresses.create(actorOf(c), c.req.valid("json"));
      return c.json({ address: created.address, alias: aliasJson(created.alias), ...waitingJson(created.waiting) }, 201);
    },
  );

  // --- mail log and statistics ---------------------------------------------------------------
  api.openapi(
    route({
      method: "get",
      path: "/log",
      tags: ["log"],
      summary: "Mail-log events, newest first",
      scope: "read",
      request: { query: LogQuery },
      responses: { 200: json(z.object({ items: z.array(Event), next_cursor: nextCursor }), "One page") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const rows = await listEvents(db, {
        ...(q.domain ? { domain: q.domain.toLowerCase() } : {}),
        ...(q.recipient ? { recipient: q.recipient } : {}),
        ...(q.sender ? { sender: q.sender } : {}),
        ...(q.verdict ? { verdict: q.verdict } : {}),
        ...(q.since ? { since: Date.parse(`${q.since}T00:00:00Z`) } : {}),
        ...(q.cursor ? { before: Number(q.cursor) } : {}),
        limit: q.limit + 1,
      });
      const items = rows.slice(0, q.limit);
      return c.json({ items: items.map(eventJson), next_cursor: rows.length > q.limit ? String(items.at(-1)!.id) : null }, 200);
    },
  );
  api.openapi(
    route({
      method: "get",
      path: "/log/{id}",
      tags: ["log"],
      summary: "One event",
      scope: "read",
      extraErrors: [404],
      request: { params: z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) }) },
      responses: { 200: json(Event, "The event") },
    }),
    async (c) => {
      const event = await eventById(db, c.req.valid("param").id);
      if (!event) throw new ApiError(404, "not_found", "no such event (it may have expired)");
      return c.json(eventJson(event), 200);
    },
  );
  api.openapi(
    route({ method: "get", path: "/stats", tags: ["log"], summary: "Counts per day (UTC) and category", scope: "read", request: { query: StatsQuery }, responses: { 200: json(Stats, "One series per category") } }),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await dailySeries(db, q.days, q.domain?.toLowerCase()), 200);
    },
  );

  // --- deny and allow lists ------------------------------------------------------------------
  api.openapi(
    route({ method: "get", path: "/denylist", tags: ["lists"], summary: "Senders answered 421 (entries in force)", scope: "read", responses: { 200: json(z.object({ items: z.array(DenyEntry) }), "The entries") } }),
    async (c) =>
      c.json(
        { items: (await activeDenylist(db)).map((e) => ({ value: e.value, kind: e.kind, reason: e.reason, source: e.source, created_at: isoTime(e.created_at), expires_at: isoTime(e.expires_at) })) },
        200,
      ),
  );
  api.openapi(
    route({ method: "post", path: "/denylist", tags: ["lists"], summary: "Deny a sender (IP, CIDR, domain or address)", scope: "write", extraErrors: [409, 422], request: body(DenyCreate), responses: { 201: json(DenyEntry, "The entry") } }),
    async (c) => {
      const input = c.req.valid("json");
      let expiresAt: number | null = null;
      if (input.expires) {
        try {
          expiresAt = Date.now() + duration(input.expires);
        } catch {
          throw new ApiError(422, "invalid", "expires takes a duration such as 12h, 7d or 30d", "expires");
        }
      }
      const e = await services.lists.deny(actorOf(c), input.value, { reason: input.reason ?? "", expiresAt });
      return c.json({ value: e.value, kind: e.kind, reason: e.reason, source: e.source, created_at: isoTime(e.created_at), expires_at: isoTime(e.expires_at) }, 201);
    },
  );
  api.openapi(
    route({ method: "delete", path: "/denylist/{value}", tags: ["lists"], summary: "Remove a denylist entry (URL-encode a CIDR's slash)", scope: "write", extraErrors: [404, 422], request: { params: ListValue }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.lists.undeny(actorOf(c), c.req.valid("param").value);
      return c.body(null, 204);
    },
  );
  api.openapi(
    route({ method: "get", path: "/allowlist", tags: ["lists"], summary: "Senders exempt from greylisting, rate limits and SPF/DMARC refusal", scope: "read", responses: { 200: json(z.object({ items: z.array(AllowEntry) }), "The entries") } }),
    async (c) => c.json({ items: (await listAllow(db)).map((e) => ({ value: e.value, kind: e.kind, note: e.note, created_at: isoTime(e.created_at) })) }, 200),
  );
  api.openapi(
    route({ method: "post", path: "/allowlist", tags: ["lists"], summary: "Allowlist a sender", scope: "write", extraErrors: [409, 422], request: body(AllowCreate), responses: { 201: json(AllowEntry, "The entry") } }),
    async (c) => {
      const input = c.req.valid("json");
      const e = await services.lists.allow(actorOf(c), input.value, input.note ?? "");
      return c.json({ value: e.value, kind: e.kind, note: e.note, created_at: isoTime(e.created_at) }, 201);
    },
  );
  api.openapi(
    route({ method: "delete", path: "/allowlist/{value}", tags: ["lists"], summary: "Remove an allowlist entry", scope: "write", extraErrors: [404, 422], request: { params: ListValue }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.lists.disallow(actorOf(c), c.req.valid("param").value);
      return c.body(null, 204);
    },
  );

  // --- settings and tokens -----------------------------------------------------------------
  const settings = () =>
    loadConfigWithOrigins(deps.configInput).effective.map((e) => ({ key: e.key, value: SECRET_SETTING.test(e.key) && e.shown ? "[set]" : e.shown, origin: e.origin }));
  api.openapi(
    route({ method: "get", path: "/settings", tags: ["settings"], summary: "Every setting's effective value and where it comes from", scope: "admin", responses: { 200: json(z.object({ items: z.array(Setting) }), "The settings") } }),
    (c) => c.json({ items: settings() }, 200),
  );
  api.openapi(
    route({
      method: "patch",
      path: "/settings",
      tags: ["settings"],
      summary: "Change settings in config.toml",
      description: "Validated as a whole first (nothing is written when a value is bad). Greylisting, scanning, smarthost, log retention, address defaults and destination verification apply at once; the rest after a restart. Environment variables and flags still win over the file.",
      scope: "admin",
      extraErrors: [422],
      request: body(SettingsPatch),
      responses: { 200: json(z.object({ items: z.array(Setting) }), "The settings after the change") },
    }),
    async (c) => {
      const patch = c.req.valid("json");
      const known = new Set(SETTINGS.map((s) => [s.section, s.key].filter(Boolean).join(".")));
      const unknown = Object.keys(patch).find((k) => !known.has(k));
      if (unknown) throw new ApiError(400, "bad_request", `unknown setting ${unknown}`, unknown);
      try {
        const { before, after } = writeSettings(deps.configInput, Object.fromEntries(Object.entries(patch).map(([k, v]) => [k, v ?? ""])));
        deps.applyConfig(after);
        await services.audit(actorOf(c), "settings.update", "config.toml", before, patch);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const field = Object.keys(patch).find((k) => err.source.includes(k.split(".").pop()!));
        throw new ApiError(422, "invalid", err.message.replace(/^invalid configuration: /, ""), field);
      }
      return c.json({ items: settings() }, 200);
    },
  );

  api.openapi(
    route({ method: "get", path: "/tokens", tags: ["tokens"], summary: "API tokens (never their secret)", scope: "admin", responses: { 200: json(z.object({ items: z.array(Token) }), "The tokens, revoked ones included") } }),
    async (c) => c.json({ items: (await listTokens(db)).map(tokenJson) }, 200),
  );
  api.openapi(
    route({
      method: "post",
      path: "/tokens",
      tags: ["tokens"],
      summary: "Create a token; its secret is in this answer only",
      scope: "admin",
      extraErrors: [409, 422],
      request: body(TokenCreate),
      responses: { 201: json(z.object({ token: z.string(), info: Token }), "The token") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const created = await services.tokens.create(actorOf(c), input.name, input.scope);
      return c.json({ token: created.token, info: tokenJson(created.info) }, 201);
    },
  );
  api.openapi(
    route({ method: "delete", path: "/tokens/{name}", tags: ["tokens"], summary: "Revoke a token", scope: "admin", extraErrors: [404], request: { params: TokenName }, responses: { 204: { description: "Revoked" } } }),
    async (c) => {
      await services.tokens.revoke(actorOf(c), c.req.valid("param").name);
      return c.body(null, 204);
    },
  );
}
