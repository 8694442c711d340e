// GET /metrics on the admin port, in the Prometheus text format. It is outside
// the admin session (scrapers have no cookie) and checks access itself: with
// `[metrics] token` set, every request must bear it, also from loopback (a
// reverse proxy on this machine makes remote requests look local); without
// one, only loopback may scrape.
import type { Hono } from "hono";
import type { Config } from "../config/index.ts";
import { CONTENT_TYPE } from "../metrics/registry.ts";
import { clientIp, type Env, sameToken } from "./session.ts";

const METRICS_PATH = "/metrics";

export type MetricsAccess = "allowed" | "unauthorized" | "forbidden";

export function metricsAccess(remoteIp: string, authorization: string | undefined, token: string | null): MetricsAccess {
  if (token !== null) {
    const given = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    return given !== undefined && sameToken(given, token) ? "allowed" : "unauthorized";
  }
  return isLoopback(remoteIp) ? "allowed" : "forbidden";
}

function isLoopback(ip: string): boolean {
  const address = ip.replace(/^::ffff:/i, "");
  return /^127\.\d+\.\d+\.\d+$/.test(address) || address === "::1";
}

export function mountMetrics(app: Hono<Env>, deps: { config: Config; metrics: { render(): string } }): void {
  app.get(METRICS_PATH, (c) => {
    const access = metricsAccess(clientIp(c), c.req.header("authorization"), deps.config.metrics.token);
    if (access === "unauthorized") return c.text("send Authorization: Bearer <metrics.token>\n", 401, { "www-authenticate": 'Bearer realm="mailferry metrics"' });
    if (access === "forbidden") return c.text("metrics are served to loopback only; set metrics.token to scrape from elsewhere\n", 403);
    return c.body(deps.metrics.render(), 200, { "content-type": CONTENT_TYPE });
  });
}
