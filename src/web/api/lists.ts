// /denylist and /allowlist: senders refused, and senders exempt from
// greylisting, rate limits and SPF/DMARC refusal.
import { z } from "@hono/zod-openapi";
import { duration } from "../../config/values.ts";
import { isoTime } from "../../service/json.ts";
import { listAllow } from "../../store/allowlist.ts";
import { activeDenylist } from "../../store/senders.ts";
import { type Api, ApiError, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { AllowCreate, AllowEntry, DenyCreate, DenyEntryBody, ListValue } from "./schemas.ts";

export function mountListRoutes(api: Api, { db, services }: ApiDeps): void {
  api.openapi(
    scopedRoute({ method: "get", path: "/denylist", tags: ["lists"], summary: "Senders answered 421 (entries in force)", scope: "read", responses: { 200: json(z.object({ items: z.array(DenyEntryBody) }), "The entries") } }),
    async (c) =>
      c.json(
        { items: (await activeDenylist(db)).map((e) => ({ value: e.value, kind: e.kind, reason: e.reason, source: e.source, created_at: isoTime(e.created_at), expires_at: isoTime(e.expires_at) })) },
        200,
      ),
  );
  api.openapi(
    scopedRoute({ method: "post", path: "/denylist", tags: ["lists"], summary: "Deny a sender (IP, CIDR, domain or address)", scope: "write", extraErrors: [409, 422], request: body(DenyCreate), responses: { 201: json(DenyEntryBody, "The entry") } }),
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
      const e = await services.lists.deny(tokenActor(c), input.value, { reason: input.reason ?? "", expiresAt });
      return c.json({ value: e.value, kind: e.kind, reason: e.reason, source: e.source, created_at: isoTime(e.created_at), expires_at: isoTime(e.expires_at) }, 201);
    },
  );
  api.openapi(
    scopedRoute({ method: "delete", path: "/denylist/{value}", tags: ["lists"], summary: "Remove a denylist entry (URL-encode a CIDR's slash)", scope: "write", extraErrors: [404, 422], request: { params: ListValue }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.lists.undeny(tokenActor(c), c.req.valid("param").value);
      return c.body(null, 204);
    },
  );
  api.openapi(
    scopedRoute({ method: "get", path: "/allowlist", tags: ["lists"], summary: "Senders exempt from greylisting, rate limits and SPF/DMARC refusal", scope: "read", responses: { 200: json(z.object({ items: z.array(AllowEntry) }), "The entries") } }),
    async (c) => c.json({ items: (await listAllow(db)).map((e) => ({ value: e.value, kind: e.kind, note: e.note, created_at: isoTime(e.created_at) })) }, 200),
  );
  api.openapi(
    scopedRoute({ method: "post", path: "/allowlist", tags: ["lists"], summary: "Allowlist a sender", scope: "write", extraErrors: [409, 422], request: body(AllowCreate), responses: { 201: json(AllowEntry, "The entry") } }),
    async (c) => {
      const input = c.req.valid("json");
      const e = await services.lists.allow(tokenActor(c), input.value, input.note ?? "");
      return c.json({ value: e.value, kind: e.kind, note: e.note, created_at: isoTime(e.created_at) }, 201);
    },
  );
  api.openapi(
    scopedRoute({ method: "delete", path: "/allowlist/{value}", tags: ["lists"], summary: "Remove an allowlist entry", scope: "write", extraErrors: [404, 422], request: { params: ListValue }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.lists.disallow(tokenActor(c), c.req.valid("param").value);
      return c.body(null, 204);
    },
  );
}
