// /catch-all: the names of the learning catch-all an admin should see
// (suggested, refused, allowed again), and the admin's word on one
// (docs/aliases.md, "Learning catch-all").
import { z } from "@hono/zod-openapi";
import { catchAllJson } from "../../service/catchall.ts";
import { type Api, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { CatchAllAddress, CatchAllDecide, CatchAllNameBody } from "./schemas.ts";

export function mountCatchAllRoutes(api: Api, { services }: ApiDeps): void {
  api.openapi(
    scopedRoute({ method: "get", path: "/catch-all", tags: ["catch-all"], summary: "Catch-all names suggested for refusal, refused, or allowed again", scope: "read", responses: { 200: json(z.object({ items: z.array(CatchAllNameBody) }), "The names") } }),
    async (c) => c.json({ items: (await services.catchAll.list()).map(catchAllJson) }, 200),
  );
  api.openapi(
    scopedRoute({
      method: "put",
      path: "/catch-all/{address}",
      tags: ["catch-all"],
      summary: "Refuse a catch-all name (550 5.1.1 at RCPT) or allow it again",
      scope: "write",
      extraErrors: [404, 422],
      request: { params: CatchAllAddress, ...body(CatchAllDecide) },
      responses: { 200: json(CatchAllNameBody, "The name as it is now") },
    }),
    async (c) => c.json(catchAllJson(await services.catchAll.decide(tokenActor(c), c.req.valid("param").address, c.req.valid("json").state)), 200),
  );
}
