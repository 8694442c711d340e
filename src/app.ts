// The appliance in one process: data dir, database, DNS, MX listener and
// HTTP server, started in dependency order and stopped in reverse.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config/index.ts";
import { deliverNotYetAvailable } from "./delivery/index.ts";
import { createResolver, type Resolver } from "./dns/resolver.ts";
import type { Logger } from "./log.ts";
import { createRouter } from "./routing/router.ts";
import { createHooks } from "./smtp/hooks.ts";
import { type MxListener, startMxListener } from "./smtp/listener.ts";
import { loadTlsCredentials } from "./smtp/tls.ts";
import { DATABASE_FILE, openStore, type Store } from "./store/db.ts";
import { recordEvent } from "./store/events.ts";
import { createWebApp } from "./web/app.ts";

export interface Appliance {
  config: Config;
  store: Store;
  resolver: Resolver;
  smtp: MxListener;
  http: { host: string; port: number; url: string };
  stop(): Promise<void>;
}

export async function startAppliance(config: Config, logger: Logger): Promise<Appliance> {
  const startedAt = Date.now();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  const store = await openStore(join(config.dataDir, DATABASE_FILE));
  // Shutdown runs these front to back: drain SMTP first, close the database last.
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  try {
    const tls = loadTlsCredentials(config);
    if (tls.selfSigned) logger.info("tls.self_signed", { cert: tls.certPath, note: "set tls.cert/tls.key for a CA-signed certificate" });
    const resolver = createResolver({ servers: config.dns.servers, timeout: config.dns.timeout });
    const hooks = createHooks({ router: createRouter(store.db), maxSize: config.smtp.maxSize, deliver: deliverNotYetAvailable });
    const smtp = await startMxListener({ config, tls, hooks, resolver, logger, recordEvent: (e) => recordEvent(store.db, e) });
    cleanup.unshift(() => smtp.close());

    const web = createWebApp({ store, smtp, startedAt });
    const server = Bun.serve({ hostname: config.http.host, port: config.http.port, fetch: web.fetch });
    cleanup.splice(1, 0, async () => {
      await server.stop();
    });
    const httpHost = config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host;
    const http = { host: config.http.host, port: server.port!, url: `http://${httpHost}:${server.port}/` };

    logger.info("mailferry.ready", {
      hostname: config.hostname,
      data_dir: config.dataDir,
      smtp: `${smtp.host}:${smtp.port}`,
      admin_url: http.url,
      health_url: `${http.url}healthz`,
      startup_ms: Date.now() - startedAt,
    });

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        logger.info("mailferry.stopping", {});
        for (const step of cleanup) await step();
        logger.info("mailferry.stopped", {});
      })());
    return { config, store, resolver, smtp, http, stop };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => {});
    throw err;
  }
}
