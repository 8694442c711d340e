// /destinations: forwarding destinations outside the managed domains, their
// verification mail and removal.
import { z } from "@hono/zod-openapi";
import { destinationJson } from "../../service/json.ts";
import { type Api, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { DestinationAddress, DestinationBody, DestinationCreate, nextCursor, Page } from "./schemas.ts";

export function mountDestinationRoutes(api: Api, { services }: ApiDeps): void {
  api.openapi(
    scopedRoute({
      method: "get",
      path: "/destinations",
      tags: ["destinations"],
      summary: "Forwarding destinations outside the managed domains, and whether each is verified",
      scope: "read",
      request: { query: Page },
      responses: { 200: json(z.object({ items: z.array(DestinationBody), next_cursor: nextCursor }), "One page") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const rows = await services.destinations.list({ after: Number(q.cursor ?? 0), limit: q.limit + 1 });
      const items = rows.slice(0, q.limit);
      return c.json({ items: items.map(destinationJson), next_cursor: rows.length > q.limit ? String(items.at(-1)!.id) : null }, 200);
    },
  );
  api.openapi(
    scopedRoute({
      method: "post",
      path: "/destinations",
      tags: ["destinations"],
      summary: "Add a destination and mail it a verification link (valid 24 hours)",
      scope: "write",
      extraErrors: [422],
      request: body(DestinationCreate),
      responses: { 201: json(z.object({ destination: DestinationBody, verification_sent: z.boolean() }), "The destination") },
    }),
    async (c) => {
      const { destination, sent } = await services.destinations.add(tokenActor(c), c.req.valid("json").address);
      return c.json({ destination: destinationJson(destination), verification_sent: sent }, 201);
    },
  );
  api.openapi(
    scopedRoute({ method: "get", path: "/destinations/{address}", tags: ["destinations"], summary: "One destination", scope: "read", extraErrors: [404, 422], request: { params: DestinationAddress }, responses: { 200: json(DestinationBody, "The destination") } }),
    async (c) => c.json(destinationJson(await services.destinations.get(c.req.valid("param").address)), 200),
  );
  api.openapi(
    scopedRoute({
      method: "post",
      path: "/destinations/{address}/resend",
      tags: ["destinations"],
      summary: "Mail a new verification link",
      scope: "write",
      extraErrors: [404, 409, 422],
      request: { params: DestinationAddress },
      responses: { 202: json(DestinationBody, "Queued") },
    }),
    async (c) => c.json(destinationJson(await services.destinations.resend(tokenActor(c), c.req.valid("param").address)), 202),
  );
  api.openapi(
    scopedRoute({ method: "delete", path: "/destinations/{address}", tags: ["destinations"], summary: "Forget a destination (it must verify again)", scope: "write", extraErrors: [404, 422], request: { params: DestinationAddress }, responses: { 204: { description: "Removed" } } }),
    async (c) => {
      await services.destinations.remove(tokenActor(c), c.req.valid("param").address);
      return c.body(null, 204);
    },
  );
}
