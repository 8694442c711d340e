// The JSON API under /api/v1: bearer tokens with scopes, a rate limit per
// token, one error shape, and an OpenAPI 3.1 document generated from the
// same zod schemas that validate the requests.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Config } from "../../config/index.ts";
import type { Resolver } from "../../dns/resolver.ts";
import { UserError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { Router } from "../../routing/router.ts";
import type { Services } from "../../service/index.ts";
import type { DB } from "../../store/db.ts";
import { tokenFor } from "../../store/tokens.ts";
import { VERSION } from "../../version.ts";
import { clientIp } from "../session.ts";
import { mountAlertRoutes } from "./alerts.ts";
import { mountNodeRoutes } from "./nodes.ts";
import { mountAliasRoutes } from "./aliases.ts";
import { mountCatchAllRoutes } from "./catchall.ts";
import { mountDomainRoutes } from "./domains.ts";
import { mountAddressRoutes } from "./addresses.ts";
import { mountDestinationRoutes } from "./destinations.ts";
import { mountListRoutes } from "./lists.ts";
import { mountLogRoutes } from "./log.ts";
import { mountSettingsRoutes } from "./settings.ts";
import { mountTokenRoutes } from "./tokens.ts";
import { mountQueueRoutes } from "./queue.ts";
import { mountPasswordRoutes } from "./passwords.ts";
import { type Api, type ApiEnv, ApiError, USER_ERROR_STATUS } from "./common.ts";

export const API_BASE = "/api/v1";

export type { Api, ApiEnv };

export interface ApiDeps {
  db: DB;
  config: Config;
  services: Services;
  router: Router;
  liveResolver: Resolver;
  logger: Logger;
}

export function apiDocument(api: Api) {
  return api.getOpenAPI31Document({
    openapi: "3.1.0",
    info: { title: "mailferry API", version: VERSION, description: "Manage domains, aliases, forwarding destinations and addresses; read the mail log, statistics and alerts." },
    servers: [{ url: API_BASE }],
  });
}

export function createApi(deps: ApiDeps): Api {
  const api = new OpenAPIHono<ApiEnv>({
    // zod's complaints (wrong type, unknown field) become a 400 naming the field.
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0]!;
      const unknown = issue.code === "unrecognized_keys" ? (issue as { keys: string[] }).keys : null;
      const field = unknown ? [...issue.path, unknown[0]].join(".") : issue.path.join(".");
      throw new ApiError(400, "bad_request", unknown ? `unknown field ${unknown.join(", ")}` : `${field || "body"}: ${issue.message}`, field || undefined);
    },
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", description: "An API token (mailferry token create, or the API page of the admin UI)" });

  api.get("/openapi.json", (c) => c.json(apiDocument(api)));

  api.use("*", bearerAuth(deps.db));
  api.use("*", rateLimit(() => deps.config.api.rateLimit));
  mountDomainRoutes(api, deps);
  mountAliasRoutes(api, deps);
  mountDestinationRoutes(api, deps);
  mountAddressRoutes(api, deps);
  mountLogRoutes(api, deps);
  mountAlertRoutes(api, deps);
  mountNodeRoutes(api, deps);
  mountListRoutes(api, deps);
  mountCatchAllRoutes(api, deps);
  mountSettingsRoutes(api, deps);
  mountTokenRoutes(api, deps);
  mountQueueRoutes(api, deps);
  mountPasswordRoutes(api, deps);

  api.notFound((c) => c.json({ error: { code: "not_found" as const, message: `no API route ${c.req.method} ${new URL(c.req.url).pathname}` } }, 404));
  api.onError((err, c) => {
    if (err instanceof ApiError) return c.json({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } }, err.status, err.headers);
    if (err instanceof UserError) {
      const [status, code] = USER_ERROR_STATUS[err.kind];
      return c.json({ error: { code, message: err.message, ...(err.field ? { field: err.field } : {}) } }, status);
    }
    if (err instanceof HTTPException && err.status < 500) return c.json({ error: { code: "bad_request" as const, message: err.message || "bad request" } }, 400);
    deps.logger.error("api.failed", { method: c.req.method, path: new URL(c.req.url).pathname, error: err });
    return c.json({ error: { code: "internal" as const, message: "internal error (logged)" } }, 500);
  });
  return api;
}

/** Every API route but the document needs `Authorization: Bearer <token>` of an active token. */
function bearerAuth(db: DB): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    c.set("ip", clientIp(c));
    const header = c.req.header("authorization") ?? "";
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const challenge = { "www-authenticate": 'Bearer realm="mailferry"' };
    if (!bearer) throw new ApiError(401, "unauthorized", "send Authorization: Bearer <token>", undefined, challenge);
    const token = await tokenFor(db, bearer);
    if (!token) throw new ApiError(401, "unauthorized", "the token is not valid (unknown or revoked)", undefined, challenge);
    c.set("token", token);
    await next();
  };
}

/** A fixed one-minute window per token; the limit is read on each request (settings apply at once). */
function rateLimit(limit: () => number): MiddlewareHandler<ApiEnv> {
  const windows = new Map<number, { start: number; count: number }>();
  return async (c, next) => {
    const id = c.get("token").id;
    const now = Date.now();
    let w = windows.get(id);
    if (!w || now - w.start >= 60_000) windows.set(id, (w = { start: now, count: 0 }));
    if (++w.count > limit()) {
      const retry = Math.max(1, Math.ceil((w.start + 60_000 - now) / 1000));
      throw new ApiError(429, "rate_limited", `more than ${limit()} requests in a minute; retry in ${retry} s`, undefined, { "retry-after": String(retry) });
    }
    await next();
  };
}
