// The admin UI: server-rendered pages (Hono JSX) enhanced by htmx, one route
// module per page or resource. Every change goes through the same service
// functions as the CLI and the API and is written to the audit log; invalid
// input is answered next to its field.
import { Hono } from "hono";
import type { Env } from "../session.ts";
import { accountRoutes } from "./account.tsx";
import { aliasRoutes } from "./aliases.tsx";
import { apiAccessRoutes } from "./api-access.tsx";
import { auditRoutes } from "./audit.tsx";
import { catchAllRoutes } from "./catchall.tsx";
import type { UiDeps } from "./common.ts";
import { dashboardRoutes } from "./dashboard.tsx";
import { destinationRoutes } from "./destinations.tsx";
import { domainRoutes } from "./domains.tsx";
import { listRoutes } from "./lists.tsx";
import { logRoutes } from "./log.tsx";
import { loginRoutes } from "./login.tsx";
import { settingsRoutes } from "./settings.tsx";
import { queueRoutes } from "./queue.tsx";
import { passwordRoutes } from "./passwords.tsx";

export type { UiDeps };

export function createUi(deps: UiDeps): Hono<Env> {
  return new Hono<Env>()
    .route("/", loginRoutes(deps))
    .route("/", dashboardRoutes(deps))
    .route("/domains", domainRoutes(deps))
    .route("/aliases", aliasRoutes(deps))
    .route("/log", logRoutes(deps))
    .route("/lists", listRoutes(deps))
    .route("/catch-all", catchAllRoutes(deps))
    .route("/destinations", destinationRoutes(deps))
    .route("/queue", queueRoutes(deps))
    .route("/passwords", passwordRoutes(deps))
    .route("/api-access", apiAccessRoutes(deps))
    .route("/audit", auditRoutes(deps))
    .route("/settings", settingsRoutes(deps))
    .route("/account", accountRoutes(deps));
}
