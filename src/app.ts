// The appliance in one process: data dir, database, DNS, MX listener and
// HTTP server, started in dependency order and stopped in reverse.
import { adminUrl, type Config, type ConfigInput, publicBaseUrl, readSettingFile } from "./config/index.ts";
import { adminCount } from "./store/admins.ts";
import type { Hono } from "hono";
import type { Env } from "./web/session.ts";
import { openSetupToken, removeSetupToken, setupUrl as setupPageUrl } from "./store/setup-token.ts";
import { startAuthWorkers } from "./auth/workers.ts";
import { mtaStsMode, mtaStsPolicy } from "./auth/records.ts";
import { createSrs } from "./auth/srs.ts";
import { createAbuseGuard } from "./policy/abuse.ts";
import { createCatchAllLearner } from "./policy/catchall.ts";
import { scannerDown, scanResult, scanWithRspamd } from "./policy/scan.ts";
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
import { type SubmissionListener, startSubmissionListener } from "./submission/listener.ts";
import { checkSubmissionAuth, countSubmission } from "./store/passwords.ts";
import { fixedCertificate, loadTlsCredentials } from "./tls/credentials.ts";
import { type AcmeManager, createAcmeManager } from "./tls/acme.ts";
import { listenHttp } from "./tls/http-listener.ts";
import { type PublicListeners, startPublicListeners } from "./tls/public.ts";
import { databaseLocation, openDatabase, type Store } from "./store/db.ts";
import { preparePrivateDataDir } from "./store/data-dir.ts";
import { createEventRecorder } from "./store/events.ts";
import { createDeliveredMarks } from "./store/deliveries.ts";
import { loadNodeSecrets } from "./store/secrets.ts";
import { acquireServerLock } from "./store/lock.ts";
import { createJobLocks } from "./store/job-locks.ts";
import { nodeHostnames, startNodeHeartbeat } from "./store/nodes.ts";
import { createServices } from "./service/index.ts";
import { followSharedSettings, sharesSettings } from "./service/settings.ts";
import { domainService } from "./service/domains.ts";
import { startDkimActivation } from "./service/dkim-rotation.ts";
import { createMetrics } from "./metrics/index.ts";
import { startAlertJob } from "./alerts/index.ts";
import { freeBytes } from "./doctor/facts.ts";
import { createWebApp, openPathsOnly } from "./web/app.ts";

export interface Appliance {
  config: Config;
  store: Store;
  resolver: Resolver;
  smtp: MxListener;
  /** The submission ports (587, 465), when submission.enabled. */
  submission: SubmissionListener | null;
  http: { host: string; port: number; url: string };
  outbox: Outbox;
  /** The one-time set-up URL while no admin exists, else null. */
  setupUrl: string | null;
  /** The HTTP application (its route table is what the route tests walk). */
  web: Hono<Env>;
  /** Certificates from the ACME CA, when acme.enabled. */
  acme: AcmeManager | null;
  /** The HTTP-01 and public HTTPS listeners, when acme.enabled. */
  publicListeners: PublicListeners | null;
  stop(): Promise<void>;
}

function readCa(path: string | null): Buffer | undefined {
  return path ? readSettingFile(path, { section: "outbound", key: "ca_file" }) : undefined;
}

/**
 * What every part started pushes: how to stop it. Shutdown runs them
 * last-started first (HTTP, SMTP drained, background jobs), writes the
 * mail-log events still queued, closes the database and releases the lock.
 */
interface Stops {
  push(stop: () => Promise<void>): void;
  all(): Promise<void>;
}

function stopStack(): Stops {
  const stops: (() => Promise<void>)[] = [];
  return {
    push: (stop) => void stops.push(stop),
    async all() {
      for (const stop of [...stops].reverse()) await stop();
    },
  };
}

/** The data directory, held (restore and a second server refuse while it is), and its database. */
async function openData(config: Config, logger: Logger, stops: Stops) {
  preparePrivateDataDir(config.dataDir);
  const lock = acquireServerLock(config.dataDir);
  stops.push(async () => lock.release());
  const store = await openDatabase(databaseLocation(config), {
    onPreMigrationBackup: (file, pending) => logger.info("store.pre_migration_backup", { file, pending }),
    dataDir: config.dataDir,
    onNoPreMigrationBackup: (reason, pending) => logger.warn("store.no_pre_migration_backup", { reason, pending }),
  });
  stops.push(() => store.close());
  // This node among those on the database (docs/multi-node.md): an MX host every node names.
  const heartbeat = await startNodeHeartbeat(store.db, config.hostname, logger);
  stops.push(() => heartbeat.stop());
  const events = createEventRecorder(store.db);
  stops.push(() => events.flush());
  return { store, events, secrets: await loadNodeSecrets(store.db, config.dataDir) };
}

type Data = Awaited<ReturnType<typeof openData>>;

/** DNS, certificates and the metrics the mail log feeds. */
function startFoundations(config: Config, logger: Logger, { store, events }: Data, startedAt: number) {
  const resolver = createResolver({ servers: config.dns.servers, timeout: config.dns.timeout });
  // For checking what DNS publishes right now (the domain page): no cache.
  const liveResolver = createResolver({ servers: config.dns.servers, timeout: config.dns.timeout, maxCacheEntries: 0 });
  const ownTls = loadTlsCredentials(config);
  const acme = config.acme.enabled ? createAcmeManager({ config, db: store.db, resolver, logger, fallback: ownTls }) : null;
  const certificates = acme ?? fixedCertificate(ownTls);
  if (certificates.current().selfSigned) {
    logger.info("tls.self_signed", { cert: ownTls.certPath, note: acme ? "served until the ACME certificate is issued" : "set tls.cert/tls.key or acme.enabled for a CA-signed certificate" });
  }
  const metrics = createMetrics({ startedAt, dnsQueries: () => resolver.queriesSent + liveResolver.queriesSent });
  // Each mail-log event is counted in the metrics as it is recorded, so the two agree.
  const record = async (e: Parameters<typeof events.record>[0]) => {
    metrics.observeEvent(e);
    await events.record(e);
  };
  return { resolver, liveResolver, acme, certificates, metrics, record };
}

type Foundations = ReturnType<typeof startFoundations>;

/** The outbound side: authentication workers, SRS, the relay and the outbox of mail mailferry writes. */
function startOutbound(config: Config, logger: Logger, { store, secrets }: Data, { resolver }: Foundations, stops: Stops) {
  const authWorkers = startAuthWorkers({ hostname: config.hostname, lookup: resolver.forMailauth, logger, size: config.forwarding.workerThreads });
  stops.push(() => authWorkers.close());
  const srs = createSrs({ domain: config.srs.domain, secrets: [secrets.srs] });
  const ca = readCa(config.outbound.caFile);
  const relay = createRelay({ config, resolver, mtaSts: createMtaSts({ resolver, port: config.outbound.mtaStsPort, allowPrivate: config.outbound.allowPrivate, ...(ca ? { ca } : {}) }), ...(ca ? { ca } : {}) });
  // Runs after the SMTP listener drained and the outbox stopped: nothing sends any more.
  stops.push(async () => relay.close());
  const outbox = createOutbox({ db: store.db, relay, hostname: config.hostname, outboundPort: config.outbound.port, logger });
  outbox.start();
  stops.push(() => outbox.stop());
  return { authWorkers, srs, relay, outbox };
}

type Outbound = ReturnType<typeof startOutbound>;

/** Housekeeping every 10 minutes, the second phase of DKIM rotations (a pending key signs once DNS serves it), and the alert checks. */
async function startBackgroundJobs(config: Config, logger: Logger, { store, secrets }: Data, { resolver, liveResolver, certificates, acme }: Foundations, { outbox }: Outbound, stops: Stops) {
  // Several nodes on one PostgreSQL: each job runs on the node holding its lock (store/job-locks.ts).
  const locks = createJobLocks(store.db, logger);
  await locks.start();
  stops.push(() => locks.stop());
  const prune = async () => {
    if (!locks.holds("housekeeping")) return;
    await housekeeping(store.db, { eventRetentionMs: config.log.retention, maxEvents: config.log.maxEvents }).then(
      (removed) => logger.debug("housekeeping.done", removed),
      (err) => logger.error("housekeeping.failed", { error: err }),
    );
  };
  void prune();
  const maintenance = setInterval(prune, 600_000);
  maintenance.unref();
  stops.push(async () => clearInterval(maintenance));
  const dkimActivation = startDkimActivation({ db: store.db, runsHere: () => locks.holds("dkim_activation"), lookup: (name, type) => liveResolver.resolve(name, type), logger });
  stops.push(() => dkimActivation.stop());
  const alerts = startAlertJob({
    db: store.db,
    runsHere: () => locks.holds("alerts"),
    intervalMs: config.alerts.checkInterval,
    thresholds: () => ({
      destination: { failures: config.alerts.destinationFailures, authRejections: config.alerts.authRejections },
      aliasRefusals: config.alerts.aliasRefusals,
      server: { certificateDays: config.alerts.certificateDays, acmeFailures: config.alerts.acmeFailures, diskFree: config.alerts.diskFree, outboxSize: config.alerts.outboxSize },
    }),
    server: { dataDir: config.dataDir, certificate: () => certificates.current(), acmeFailures: () => acme?.failures() ?? 0, freeBytes: () => freeBytes(config.dataDir) },
    dnsblZones: config.alerts.dnsblZones,
    digest: config.alerts.digest,
    checkDns: (names) => domainService({ db: store.db, config, now: Date.now }).checkDns(names, (name, type) => resolver.resolve(name, type)),
    channels: { email: config.alerts.email, webhookUrl: config.alerts.webhookUrl, ntfyUrl: config.alerts.ntfyUrl },
    hostname: config.hostname,
    queueMail: (to, raw) => outbox.enqueue({ from: "", to: [to], raw }),
    resolver,
    allowPrivate: config.webhooks.allowPrivate,
    webhookKey: secrets.alertsWebhook,
    timeoutMs: config.webhooks.timeout,
    logger,
  });
  stops.push(() => alerts.stop());
}

/** Where people outside open verification links: set once the admin port (and the public HTTPS port) are bound. */
function linkBase(config: Config) {
  let boundUrl = adminUrl(config);
  let publicHttpsUrl: string | null = null;
  return {
    // The configured public URL, else the public HTTPS port (ACME), else the admin URL unless on loopback,
    // which recipients cannot open (then the mail offers a reply and a code only).
    current: () => config.http.publicUrl ?? publicHttpsUrl ?? publicBaseUrl(config, boundUrl),
    bound(adminPort: string, publicHttps: string | null) {
      boundUrl = adminPort;
      publicHttpsUrl = publicHttps;
    },
  };
}

/** The MX side: the abuse guard, delivery, routing, the admin services and the listener that runs the stage checks. */
async function startMx(config: Config, logger: Logger, input: ConfigInput, data: Data, found: Foundations, out: Outbound, links: ReturnType<typeof linkBase>, stops: Stops) {
  const { store } = data;
  const { resolver, metrics, record, certificates } = found;
  const abuse = createAbuseGuard({ db: store.db, logger, greylistDelayMs: () => config.greylist.delay, observe: metrics.observeGuard, limits: () => config.limits, node: config.hostname });
  await abuse.start();
  stops.push(() => abuse.stop());
  const deliver = createDeliver({
    db: store.db,
    webhooks: { resolver, timeoutMs: config.webhooks.timeout, allowPrivate: config.webhooks.allowPrivate },
    relay: out.relay,
    compose: out.authWorkers.compose,
    dkimSign: () => config.forwarding.dkimSign,
    srs: out.srs,
    outbox: out.outbox,
    hostname: config.hostname,
    outboundPort: config.outbound.port,
    messageTimeout: config.outbound.messageTimeout,
    logger,
    recordEvent: record,
    markDelivered: createDeliveredMarks(store.db),
    vacations: createVacationResponder({ db: store.db, outbox: out.outbox, hostname: config.hostname, logger }),
  });
  const router = createRouter(store.db, routerOptions(config));
  const services = createServices({
    db: store.db,
    config,
    configInput: input,
    verifyKey: data.secrets.verify,
    queueMail: (to, raw) => out.outbox.enqueue({ from: "", to: [to], raw }),
    runQueue: () => void out.outbox.runDue(),
    publicUrl: links.current,
    // Test messages from the admin UI take the path forwarded copies take.
    forwarding: { router, relay: out.relay, recordEvent: record },
  });
  const hooks = createHooks({
    router,
    srs: out.srs,
    maxSize: config.smtp.maxSize,
    hostname: config.hostname,
    authenticate: out.authWorkers.authenticate,
    abuse,
    scan: {
      applies: async (session) => config.scan.rspamdUrl !== null && (await anyDomainScans(store.db, session.recipients.map((r) => r.route.alias.domain))),
      run: (session, message) =>
        scanWithRspamd(config.scan.rspamdUrl!, message, session, session.recipients.map((r) => r.address)).then(scanResult, (err) => scannerDown(err, config.scan.failOpen)),
    },
    deliver,
    confirmDestination: async (recipient, ip) => (await services.destinations.confirmByReply(recipient, ip))?.address ?? null,
    catchAll: createCatchAllLearner({ db: store.db, logger, resolver, settings: () => config.catchall }),
  });
  const smtp = await startMxListener({ config, certificates, hooks, resolver, logger, recordEvent: record });
  stops.push(() => smtp.close());
  metrics.countOpenSessions(() => smtp.sessions);
  return { router, services, smtp };
}

type Mx = Awaited<ReturnType<typeof startMx>>;

/** The submission ports, when enabled: people send as their aliases through the outbound queue (docs/send-as.md). */
async function startSubmission(config: Config, logger: Logger, { store }: Data, { certificates }: Foundations, out: Outbound, stops: Stops): Promise<SubmissionListener | null> {
  if (!config.submission.enabled) return null;
  const submission = await startSubmissionListener({
    config,
    certificates,
    logger,
    authenticate: (input) => checkSubmissionAuth(store.db, input),
    countMessage: (id) => countSubmission(store.db, id),
    scan: async (message, session, recipients) =>
      config.scan.rspamdUrl === null ? null : scanWithRspamd(config.scan.rspamdUrl, message, session, recipients).then(scanResult, (err) => scannerDown(err, config.scan.failOpen)),
    enqueue: (message) => out.outbox.enqueue(message),
  });
  stops.push(() => submission.close());
  return submission;
}

/** The admin port (UI, API, health, metrics), the public ACME listeners, and the set-up token while no admin exists. */
async function startAdminPort(config: Config, logger: Logger, { store }: Data, found: Foundations, mx: Mx, startedAt: number, stops: Stops) {
  const { acme, certificates } = found;
  // While no admin exists, the set-up page needs this token (printed at start, kept in the data
  // dir for `mailferry admin setup-url`), so a stranger who finds the port cannot claim the instance first.
  const needsSetup = (await adminCount(store.db)) === 0;
  if (!needsSetup) removeSetupToken(config.dataDir);
  const setupToken = needsSetup ? openSetupToken(config.dataDir) : null;
  const web = createWebApp({
    store,
    smtp: mx.smtp,
    startedAt,
    mtaStsPolicy: async () => mtaStsPolicy(await nodeHostnames(store.db, config.hostname), mtaStsMode(!certificates.current().selfSigned)),
    db: store.db,
    config,
    resolver: found.resolver,
    liveResolver: found.liveResolver,
    metrics: found.metrics,
    router: mx.router,
    logger,
    setupToken: () => setupToken,
    secureCookies: config.http.tls,
    services: mx.services,
  });
  const server = listenHttp({ hostname: config.http.host, port: config.http.port, fetch: (req, srv) => web.fetch(req, srv), ...(config.http.tls ? { certificates } : {}), logger });
  stops.push(() => server.stop());
  const http = { host: config.http.host, port: server.port, url: adminUrl(config, server.port) };
  const publicListeners = acme ? startPublicListeners({ config, acme, fetch: openPathsOnly(web), logger }) : null;
  if (publicListeners) stops.push(() => publicListeners.stop());
  if (acme) {
    await acme.start();
    stops.push(async () => acme.stop());
  }
  return { web, http, publicListeners, setupUrl: setupToken ? setupPageUrl(http.url, setupToken) : null };
}

/**
 * `input` is how `config` was loaded (environment, flags, working dir): the
 * settings service reloads the configuration the same way after a change.
 */
export async function startAppliance(config: Config, logger: Logger, input: ConfigInput = {}): Promise<Appliance> {
  const startedAt = Date.now();
  const stops = stopStack();
  try {
    const data = await openData(config, logger, stops);
    // Several nodes on one PostgreSQL share the settings changed at run time (docs/multi-node.md).
    if (sharesSettings(config)) {
      const follower = await followSharedSettings({ db: data.store.db, config, configInput: input, logger });
      stops.push(() => follower.stop());
    }
    const found = startFoundations(config, logger, data, startedAt);
    const out = startOutbound(config, logger, data, found, stops);
    await startBackgroundJobs(config, logger, data, found, out, stops);
    const links = linkBase(config);
    const mx = await startMx(config, logger, input, data, found, out, links, stops);
    const submission = await startSubmission(config, logger, data, found, out, stops);
    const admin = await startAdminPort(config, logger, data, found, mx, startedAt, stops);
    // Recipients open verification links on the public HTTPS port when there is one.
    links.bound(admin.http.url, admin.publicListeners?.url ?? null);
    logger.info("mailferry.ready", {
      hostname: config.hostname,
      data_dir: config.dataDir,
      smtp: `${mx.smtp.host}:${mx.smtp.port}`,
      submission: submission ? `${submission.host}:${submission.port}` : undefined,
      submission_tls: submission ? `${submission.host}:${submission.tlsPort}` : undefined,
      admin_url: admin.http.url,
      setup_url: admin.setupUrl ?? undefined,
      health_url: `${admin.http.url}healthz`,
      public_https: admin.publicListeners ? `${mx.smtp.host}:${admin.publicListeners.httpsPort}` : undefined,
      startup_ms: Date.now() - startedAt,
    });
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        logger.info("mailferry.stopping", {});
        await stops.all();
        logger.info("mailferry.stopped", {});
      })());
    const { store } = data;
    return { config, store, resolver: found.resolver, smtp: mx.smtp, submission, http: admin.http, outbox: out.outbox, setupUrl: admin.setupUrl, web: admin.web, acme: found.acme, publicListeners: admin.publicListeners, stop };
  } catch (err) {
    await stops.all().catch(() => {});
    throw err;
  }
}
