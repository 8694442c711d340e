// /alerts: the alerts the server raised, lasting ones first (docs/operations.md, "Alerts").
import { z } from "@hono/zod-openapi";
import { alertList } from "../../service/alerts.ts";
import { type Api, json, scopedRoute } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { AlertBody } from "./schemas.ts";

export function mountAlertRoutes(api: Api, { db }: ApiDeps): void {
  api.openapi(
    scopedRoute({
      method: "get",
      path: "/alerts",
      tags: ["alerts"],
      summary: "Current and recent alerts, lasting ones first (as mailferry alerts list --json)",
      scope: "read",
      responses: { 200: json(z.object({ items: z.array(AlertBody) }), "Every alert") },
    }),
    async (c) => c.json({ items: await alertList(db) }, 200),
  );
}
