// The one HTTP port: health now; the admin UI and API mount here.
import { Hono } from "hono";
import { isHealthy, type Store } from "../store/db.ts";
import type { MxListener } from "../smtp/listener.ts";
import { VERSION } from "../version.ts";
import { mountStatic } from "./static.ts";

export interface WebDeps {
  store: Store;
  smtp: MxListener;
  startedAt: number;
}

export function createWebApp({ store, smtp, startedAt }: WebDeps): Hono {
  const app = new Hono();

  app.get("/healthz", (c) => {
    const dbOk = isHealthy(store);
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

  mountStatic(app);
  return app;
}
