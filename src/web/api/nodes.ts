// /nodes: the nodes (mailferry serve) on this database, each an MX host (docs/multi-node.md).
import { z } from "@hono/zod-openapi";
import { nodeJson } from "../../service/json.ts";
import { listNodes } from "../../store/nodes.ts";
import { type Api, json, scopedRoute } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { NodeBody } from "./schemas.ts";

export function mountNodeRoutes(api: Api, { db }: ApiDeps): void {
  api.openapi(
    scopedRoute({
      method: "get",
      path: "/nodes",
      tags: ["nodes"],
      summary: "The nodes on this database, by hostname (as mailferry node list --json)",
      scope: "read",
      responses: { 200: json(z.object({ items: z.array(NodeBody) }), "Every registered node") },
    }),
    async (c) => c.json({ items: (await listNodes(db, Date.now())).map(nodeJson) }, 200),
  );
}
