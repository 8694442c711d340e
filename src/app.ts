// The appliance in one process: data dir, database, DNS, MX listener and
// HTTP server, started in dependency order and stopped in reverse.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { adminUrl, type Config, ConfigError, type ConfigInput, envName } from "./config/index.ts";
import { adminCount } from "./store/admins.ts";
import type { Hono } from "hono";
import { createSetupToken, type Env } from "./web/session.ts";
import { readFileSync } from "node:fs";
import { authenticateInbound } from "./auth/inbound.ts";
import { mtaStsMode, mtaStsPolicy } from "./auth/records.ts";
import { createSrs } from "./auth/srs.ts";
import { createAbuseGuard } from "./policy/abuse.ts";
import { scannerDown, scanVerdict, scanWithRspamd } from "./policy/scan.ts";
import { anyDomainScans } from "./store/domains.ts";
import { createDeliver } from "./delivery/index.ts";
import { createMtaSts } from "./delivery/mta-sts.ts";
import { createOutbox, type Outbox } from "./delivery/outbox.ts";
import { createRelay } from "./delivery/relay.ts";
import { createVacationResponder } from "./delivery/vacation.ts";
import { housekeeping } from "./store/housekeeping.ts";
import { createResolver, type Resolver } from "./dns/resolver.ts";
import type { Logger } from "./log.ts";
import { createRouter, routerOptions } from "./routing/router.ts";
import { createHooks } from "./smtp/hooks.ts";
import { type MxListener, startMxListener } from "./smtp/listener.ts";
import { loadTlsCredentials } from "./smtp/tls.ts";
import { DATABASE_FILE, openStore, type Store } from "./store/db.ts";
import { recordEvent } from "./store/events.ts";
import { loadSecret, SRS_SECRET_FILE } from "./store/secrets.ts";
import { createServices } from "./service/index.ts";
import { createWebApp } from "./web/app.ts";

export interface Appliance {
  config: Config;
  store: Store;
  resolver: Resolver;
  smtp: MxListener;
  http: { host: string; port: number; url: string };
  outbox: Outbox;
  /** The one-time set-up URL while no admin exists, else null. */
  setupUrl: string | null;
  /** The HTTP application (its route table is what the route tests walk). */
  web: Hono<Env>;
  stop(): Promise<void>;
}

function readCa(path: string | null): Buffer | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    const name = envName({ section: "outbound", key: "ca_file" });
    throw new ConfigError(name, `${name}=${JSON.stringify(path)}: cannot read file (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/**
 * `input` is how `config` was loaded (environment, flags, working dir): the
 * settings page reloads the configuration the same way after a change.
 */
export async function startAppliance(config: Config, logger: Logger, input: ConfigInput = {}): Promise<Appliance> {
  const startedAt = Date.now();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  const store = await openStore(join(config.dataDir, DATABASE_FILE));
  // Each part started pushes how to stop it; shutdown runs them last-started first
  // (HTTP, SMTP drained, background jobs) and closes the database at the very end.
  const stops: (() => Promise<void>)[] = [() => store.close()];
  const stopAll = async () => {
    for (const stop of [...stops].reverse()) await stop();
  };
  try {
    const tls = loadTlsCredentials(config);
    if (tls.selfSigned) logger.info("tls.self_signed", { cert: tls.certPath, note: "set tls.cert/tls.key for a CA-signed certificate" });
    const resolver = createResolver({ servers: config.dns.servers, timeout: config.dns.timeout });
    const record = (e: Parameters<typeof recordEvent>[1]) => recordEvent(store.db, e);
    const srs = createSrs({ domain: config.srs.domain, secrets: [loadSecret(config.dataDir, SRS_SECRET_FILE)] });
    const ca = readCa(config.outbound.caFile);
    const relay = createRelay({ config, resolver, mtaSts: createMtaSts({ resolver, port: config.outbound.mtaStsPort, ...(ca ? { ca } : {}) }), ...(ca ? { ca } : {}) });

    const outbox = createOutbox({ db: store.db, relay, outboundPort: config.outbound.port, logger });
    outbox.start();
    stops.push(() => outbox.stop());
    const prune = () =>
      housekeeping(store.db, { eventRetentionMs: config.log.retention }).then(
        (removed) => logger.debug("housekeeping.done", removed),
        (err) => logger.error("housekeeping.failed", { error: err }),
      );
    void prune();
    const maintenance = setInterval(prune, 600_000);
    maintenance.unref();
    stops.push(async () => clearInterval(maintenance));

    const abuse = createAbuseGuard({ db: store.db, logger, greylistDelayMs: () => config.greylist.delay });
    await abuse.start();
    stops.push(() => abuse.stop());

    const deliver = createDeliver({
      db: store.db,
      webhooks: { resolver, timeoutMs: config.webhooks.timeout, allowPrivate: config.webhooks.allowPrivate },
      relay,
      srs,
      outbox,
      hostname: config.hostname,
      outboundPort: config.outbound.port,
      messageTimeout: config.outbound.messageTimeout,
      logger,
      recordEvent: record,
    });
    const router = createRouter(store.db, routerOptions(config));
    // Links in verification mail: the configured public URL, else the admin URL once the port is bound.
    let boundUrl = adminUrl(config);
    const services = createServices({ db: store.db, config, queueMail: (to, raw) => outbox.queue(to, raw), publicUrl: () => config.http.publicUrl ?? boundUrl });
    const hooks = createHooks({
      router,
      srs,
      maxSize: config.smtp.maxSize,
      hostname: config.hostname,
      authenticate: (session, raw) => authenticateInbound(session, raw, config.hostname, resolver),
      abuse,
      scan: {
        applies: async (session) => config.scan.rspamdUrl !== null && (await anyDomainScans(store.db, session.recipients.map((r) => r.verdict.alias.domain))),
        run: (session, message) =>
          scanWithRspamd(config.scan.rspamdUrl!, message.raw, session, session.recipients.map((r) => r.address)).then(scanVerdict, (err) => scannerDown(err, config.scan.failOpen)),
      },
      deliver,
      vacations: createVacationResponder({ db: store.db, outbox, hostname: config.hostname, logger }),
    });
    const smtp = await startMxListener({ config, tls, hooks, resolver, logger, recordEvent: record });
    stops.push(() => smtp.close());

    // While no admin exists, the set-up page needs this token (printed below), so a
    // stranger who finds the port cannot claim the instance first.
    const setupToken = (await adminCount(store.db)) === 0 ? createSetupToken() : null;
    const web = createWebApp({
      store,
      smtp,
      startedAt,
      mtaStsPolicy: mtaStsPolicy(config.hostname, mtaStsMode(config.tls.cert !== null)),
      db: store.db,
      config,
      configInput: input,
      resolver,
      liveResolver: createResolver({ servers: config.dns.servers, timeout: config.dns.timeout, maxCacheEntries: 0 }),
      router,
      logger,
      setupToken: () => setupToken,
      applyConfig: (next) => {
        // What the running parts read on each use; the rest applies after a restart.
        config.greylist = next.greylist;
        config.scan = next.scan;
        config.smarthost = next.smarthost;
        config.log.retention = next.log.retention;
        config.addresses = next.addresses;
        config.delivery = next.delivery;
      },
      secureCookies: config.http.tls,
      services,
    });
    const server = Bun.serve({
      hostname: config.http.host,
      port: config.http.port,
      tls: config.http.tls ? { cert: tls.cert, key: tls.key } : undefined,
      fetch: (req, srv) => web.fetch(req, srv),
    });
    stops.push(async () => {
      await server.stop();
    });
    const http = { host: config.http.host, port: server.port!, url: adminUrl(config, server.port) };
    boundUrl = http.url;
    if (config.delivery.verifyDestinations && !config.http.publicUrl && /^(127\.|::1$|localhost$)/.test(config.http.host)) {
      logger.warn("verification.links_local", { url: http.url, note: "verification links point at the admin port on loopback, which recipients cannot open: set http.public_url" });
    }

    const setupUrl = setupToken ? `${http.url}setup?token=${setupToken}` : null;
    logger.info("mailferry.ready", {
      hostname: config.hostname,
      data_dir: config.dataDir,
      smtp: `${smtp.host}:${smtp.port}`,
      admin_url: http.url,
      setup_url: setupUrl ?? undefined,
      health_url: `${http.url}healthz`,
      startup_ms: Date.now() - startedAt,
    });

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        logger.info("mailferry.stopping", {});
        await stopAll();
        logger.info("mailferry.stopped", {});
      })());
    return { config, store, resolver, smtp, http, outbox, setupUrl, web, stop };
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}
