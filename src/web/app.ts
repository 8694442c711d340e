// The one HTTP port: health, the MTA-STS policy, static assets, the JSON API
// and the admin UI.
import { Hono } from "hono";
import { isHealthy, type Store } from "../store/db.ts";
import { findDomain } from "../store/domains.ts";
import type { MxListener } from "../smtp/listener.ts";
import { VERSION } from "../version.ts";
import { csrf, sessionAuth, type Env, OPEN_PATHS, securityHeaders } from "./session.ts";
import { API_BASE, apiDocument, createApi } from "./api/index.ts";
import { mountStatic } from "./static.ts";
import { bodyLimits } from "./body-limit.ts";
import { mountMetrics } from "./metrics.ts";
import type { Metrics } from "../metrics/index.ts";
import { createUi, type UiDeps } from "./ui/index.ts";
import { mountVerify } from "./verify.tsx";
import type { FetchHandler } from "../tls/http-listener.ts";

export interface WebDeps extends Omit<UiDeps, "apiDocument"> {
  store: Store;
  smtp: MxListener;
  startedAt: number;
  /** The MTA-STS policy text served for mta-sts.<managed domain>: every node as an `mx:`, its mode following the certificate in use. */
  mtaStsPolicy: () => Promise<string>;
  metrics: Metrics;
}

export function createWebApp(deps: WebDeps): Hono<Env> {
  const { store, smtp, startedAt, mtaStsPolicy } = deps;
  const app = new Hono<Env>();
  app.use(securityHeaders(deps.secureCookies));
  app.use(bodyLimits());

  app.get("/healthz", async (c) => {
    const dbOk = await isHealthy(store);
    const ok = dbOk && smtp.listening;
    return c.json(
      {
        status: ok ? "ok" : "degraded",
        version: VERSION,
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
        db: { ok: dbOk },
        smtp: { listening: smtp.listening, host: smtp.host, port: smtp.port },
      },
      ok ? 200 : 503,
    );
  });

  mountMetrics(app, deps);

  // RFC 8461 §3.2: https://mta-sts.<domain>/.well-known/mta-sts.txt, for managed domains only.
  app.get("/.well-known/mta-sts.txt", async (c) => {
    const host = (c.req.header("host") ?? "").replace(/:\d+$/, "").toLowerCase();
    const domain = host.startsWith("mta-sts.") ? host.slice("mta-sts.".length) : null;
    if (!domain || !(await findDomain(store.db, domain))) return c.text("no MTA-STS policy for this host\n", 404);
    return c.text(await mtaStsPolicy(), 200, { "cache-control": "max-age=3600" });
  });

  mountStatic(app);
  // The API authenticates with its own tokens, before the session middleware below.
  const api = createApi({ db: store.db, config: deps.config, services: deps.services, router: deps.router, liveResolver: deps.liveResolver, logger: deps.logger });
  app.route(API_BASE, api);
  app.use(sessionAuth(store.db));
  app.use(csrf());
  mountVerify(app, deps.services);
  app.route("/", createUi({ ...deps, apiDocument: () => apiDocument(api) }));
  app.all(`${API_BASE}/*`, (c) => c.json({ error: { code: "not_found", message: `no API route ${c.req.method} ${new URL(c.req.url).pathname}` } }, 404));
  return app;
}

/** The app as the public HTTPS port (ACME) serves it: the open paths only, never the admin UI, API or metrics. */
export function openPathsOnly(app: Hono<Env>): FetchHandler {
  return (request, server) => (OPEN_PATHS.some((p) => p.test(new URL(request.url).pathname)) ? app.fetch(request, server) : new Response("Not found\n", { status: 404 }));
}
