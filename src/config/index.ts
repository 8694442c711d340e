// Configuration: defaults < config.toml < the database (PostgreSQL: settings
// changed at run time, shared by all nodes, except those declared `node`) <
// environment < command-line flags.
// Every setting is declared once in SETTINGS: its parser (and so its type),
// default, whether it applies at once or after a restart, whether it is a
// secret, whether the settings page offers it, and its doc. The Config type,
// the environment variable (MAILFERRY_<SECTION>_<KEY>), flag (--<section>-<key>),
// TOML place ([section] key), `config check`, the settings page, the API and
// docs/configuration.md are all derived from that one declaration.
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism, hostname as osHostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import * as v from "./values.ts";
import { normalizeDomain } from "../mail/domain.ts";
import { parseMailbox } from "../mail/address.ts";

const LOG_FORMATS = ["auto", "json", "text"] as const;
const CATCHALL_LEARN_MODES = ["off", "suggest", "apply"] as const;
const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
const SMARTHOST_TLS = ["starttls", "implicit", "none"] as const;
const VERIFY_MODES = ["all", "tokens", "off"] as const;
const FORWARDING_DKIM = ["rewritten", "always"] as const;
const MAX_WORKER_THREADS = 16;
const DIGEST_PERIODS = ["off", "daily", "weekly"] as const;

export type LogFormat = (typeof LOG_FORMATS)[number];
/** What the learning catch-all does with a name that gets only spam (docs/aliases.md). */
export type CatchAllLearn = (typeof CATCHALL_LEARN_MODES)[number];
export type SmarthostTls = (typeof SMARTHOST_TLS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Which forwarding destinations outside the managed domains must confirm before they get mail (docs/aliases.md). */
export type VerifyDestinations = (typeof VERIFY_MODES)[number];
/** When a forwarded copy gets mailferry's DKIM signature besides its ARC set (docs/delivery-and-authentication.md). */
export type ForwardingDkim = (typeof FORWARDING_DKIM)[number];
/** How often the alert channels get a digest of the mail log (docs/operations.md, "Alerts"). */
export type DigestPeriod = (typeof DIGEST_PERIODS)[number];

export interface Setting {
  /** TOML section, or "" for a top-level key. */
  section: string;
  key: string;
  /** The environment/flag name when it is not `<section>_<key>` (names fixed by earlier docs). */
  name?: string;
  /** Turns what TOML, the environment or a flag gives into the value; its return type is the setting's type in Config. */
  parse: (raw: unknown) => unknown;
  /** Shown in `config check` and docs/configuration.md; a function when it depends on the machine. */
  default: unknown;
  /** What a machine-dependent default is, for docs/configuration.md (the value differs per machine). */
  defaultDoc?: string;
  /** A change made while the server runs applies at once: the running parts read it on each use. Otherwise after a restart. */
  live?: boolean;
  /**
   * Belongs to this node (its name, addresses, ports, local files): with several
   * nodes on one PostgreSQL it stays in each node's config.toml, while the rest,
   * changed at run time, is kept in the database and shared (docs/multi-node.md).
   */
  node?: boolean;
  /** Never shown back: `config check`, the API, the settings page and the audit log say only that it is set. */
  secret?: boolean;
  /** Offered on the admin UI's settings page; the rest needs config.toml, the API, `config set` or the environment. */
  form?: { label: string; hint: string };
  doc: string;
}

const DECLARED = [
  { section: "", key: "hostname", node: true, parse: v.hostname, default: () => normalizeDomain(osHostname()) ?? "localhost", defaultDoc: "the machine's host name", form: { label: "Host name", hint: "" }, doc: "Name in the SMTP banner, HELO and Received headers; default SRS domain" },
  { section: "database", key: "url", node: true, parse: v.optionalDatabaseUrl, default: "", secret: true, doc: "PostgreSQL to keep all state in, as postgres://user:password@host:port/database (docs/operations.md, PostgreSQL); empty: SQLite in the data directory" },
  { section: "smtp", key: "host", node: true, parse: v.listenHost, default: "127.0.0.1", doc: "MX listener address (production: 0.0.0.0)" },
  { section: "smtp", key: "port", node: true, parse: v.port, default: 2525, doc: "MX listener port (production: 25)" },
  { section: "smtp", key: "max_size", parse: v.byteSize, default: "50MB", doc: "Largest message accepted (SIZE); bigger gets 552" },
  { section: "smtp", key: "socket_timeout", parse: v.positiveDuration, default: "3m", doc: "Idle time before a session is closed with 421" },
  { section: "smtp", key: "shutdown_grace", parse: v.positiveDuration, default: "30s", doc: "How long sessions may finish after SIGTERM" },
  { section: "smtp", key: "hard_error_limit", parse: v.positiveInt, default: 20, doc: "Refused MAIL/RCPT commands in a session (since its last accepted message) before 421 and disconnect, like Postfix's smtpd_hard_error_limit" },
  { section: "smtp", key: "max_session_duration", parse: v.positiveDuration, default: "10m", doc: "Longest SMTP session; then 421 and disconnect (even while the client keeps sending)" },
  { section: "smtp", key: "max_data_duration", parse: v.positiveDuration, default: "5m", doc: "Longest DATA transfer (from the 354 to the final dot); then 421 and disconnect" },
  { section: "smtp", key: "max_clients", parse: v.positiveInt, default: 500, doc: "Concurrent SMTP sessions; more get 421" },
  // Senders wait 5 minutes for the banner (RFC 5321 4.5.3.2.1), but a long pause slows every legitimate one.
  { section: "smtp", key: "greet_pause", parse: v.durationUpTo(30_000), default: "100ms", doc: "Pause before the banner; clients that talk sooner get 421 (0: banner at once)" },
  { section: "submission", key: "enabled", parse: v.bool, default: false, doc: "Accept mail from people sending as their aliases with an app password (docs/send-as.md): the submission ports below" },
  { section: "submission", key: "host", node: true, parse: v.listenHost, default: "127.0.0.1", doc: "Submission listener address (production: 0.0.0.0)" },
  { section: "submission", key: "port", node: true, parse: v.port, default: 587, doc: "Submission port with STARTTLS, required before AUTH (RFC 6409)" },
  { section: "submission", key: "tls_port", node: true, parse: v.port, default: 465, doc: "Submission port with implicit TLS (RFC 8314)" },
  { section: "submission", key: "messages_per_hour", parse: v.positiveInt, default: 100, live: true, doc: "Messages an app password may send in an hour; more get 451" },
  { section: "submission", key: "recipients_per_message", parse: v.positiveInt, default: 50, live: true, doc: "Recipients of one submitted message; more get 452" },
  { section: "http", key: "host", node: true, parse: v.listenHost, default: "127.0.0.1", doc: "Admin UI / API / health address" },
  { section: "http", key: "port", node: true, parse: v.port, default: 8080, doc: "Admin UI / API / health port" },
  { section: "http", key: "tls", node: true, parse: v.bool, default: false, doc: "Serve the admin port over HTTPS with the tls.cert certificate (then Secure cookies and HSTS)" },
  { section: "http", key: "public_url", node: true, parse: v.optionalUrl, default: "", doc: "Base URL of the admin port as others reach it, for links in verification mail; default the admin URL, or no link when that is on loopback (a reply or a code confirms then)" },
  { section: "dns", key: "servers", node: true, parse: v.dnsServers, default: () => systemResolvers(), defaultDoc: "from /etc/resolv.conf", doc: "Resolvers as host:port list; default from /etc/resolv.conf" },
  { section: "dns", key: "timeout", parse: v.positiveDuration, default: "5s", doc: "Timeout of one DNS query (per server try)" },
  { section: "outbound", key: "port", parse: v.port, default: 25, doc: "Port used to deliver to destination MX hosts" },
  { section: "outbound", key: "connect_timeout", parse: v.positiveDuration, default: "30s", doc: "Timeout to connect to a destination MX host" },
  { section: "outbound", key: "message_timeout", parse: v.positiveDuration, default: "5m", doc: "Bound on delivering one message, while its sender waits for the DATA reply" },
  { section: "outbound", key: "ca_file", node: true, parse: v.optionalPath, default: "", doc: "Extra CA certificates (PEM) trusted for MX and MTA-STS certificates" },
  { section: "outbound", key: "allow_private", parse: v.bool, default: false, doc: "Deliver to MX hosts and fetch MTA-STS policies on loopback, private or link-local addresses (off: a sender's domain cannot point bounces and vacation replies into this server's network; a smarthost is always allowed)" },
  { section: "outbound", key: "mta_sts_port", parse: v.port, default: 443, doc: "HTTPS port of MTA-STS policy hosts (443; other values are for tests)" },
  { section: "smarthost", key: "host", parse: v.optionalHostname, default: "", live: true, form: { label: "Smarthost", hint: "relay all outbound mail through this host; empty: deliver directly" }, doc: "Relay all outbound mail through this host (empty: deliver to MX hosts)" },
  { section: "smarthost", key: "port", parse: v.port, default: 587, live: true, form: { label: "Smarthost port", hint: "587 for STARTTLS, 465 for implicit TLS" }, doc: "Smarthost port" },
  { section: "smarthost", key: "user", parse: v.optionalPath, default: "", live: true, form: { label: "Smarthost user", hint: "" }, doc: "Smarthost AUTH user (empty: no AUTH)" },
  { section: "smarthost", key: "password", parse: v.optionalPath, default: "", live: true, secret: true, form: { label: "Smarthost password", hint: "" }, doc: "Smarthost AUTH password" },
  { section: "smarthost", key: "tls", parse: v.oneOf(SMARTHOST_TLS), default: "starttls", live: true, form: { label: "Smarthost TLS", hint: "starttls, implicit or none" }, doc: "starttls (required), implicit (TLS from the start) or none" },
  { section: "srs", key: "domain", parse: v.optionalHostname, default: "", doc: "Domain of rewritten envelope senders; must route bounces here (default: hostname)" },
  { section: "tls", key: "cert", node: true, parse: v.optionalPath, default: "", doc: "PEM certificate (chain) for STARTTLS; default: self-signed in the data dir" },
  { section: "tls", key: "key", node: true, parse: v.optionalPath, default: "", doc: "PEM private key for tls.cert" },
  { section: "acme", key: "enabled", node: true, parse: v.bool, default: false, doc: "Obtain and renew the certificate from an ACME CA (HTTP-01), instead of tls.cert or the self-signed one" },
  { section: "acme", key: "directory_url", parse: v.optionalUrl, default: "https://acme-v02.api.letsencrypt.org/directory", doc: "ACME directory of the CA (default: Let's Encrypt production)" },
  { section: "acme", key: "email", parse: optionalMailbox, default: "", doc: "Contact address of the ACME account (expiry notices from the CA); optional" },
  { section: "acme", key: "http_port", node: true, parse: v.port, default: 80, doc: "Plain HTTP listener for HTTP-01 challenges (the CA connects to port 80); redirects the rest to HTTPS" },
  { section: "acme", key: "https_port", node: true, parse: v.port, default: 443, doc: "Public HTTPS listener: MTA-STS policy, verification pages, /healthz (never the admin UI)" },
  { section: "acme", key: "ca_file", node: true, parse: v.optionalPath, default: "", doc: "Extra CA certificates (PEM) trusted for the ACME directory's HTTPS (a local test CA)" },
  { section: "acme", key: "renew_before", parse: v.positiveDuration, default: "30d", doc: "Renew when less than this much validity remains" },
  { section: "acme", key: "check_interval", parse: v.positiveDuration, default: "5m", doc: "How often the certificate's names (managed domains) and expiry are checked; first retry delay after a failure" },
  { section: "delivery", key: "verify_destinations", name: "verify_destinations", parse: verifyDestinations, default: "tokens", live: true, doc: "Which destinations outside the managed domains must confirm a verification mail first: all, tokens (those a write-scope API token adds; an admin's word confirms the rest) or off; true/false mean all/off" },
  { section: "forwarding", key: "worker_threads", node: true, parse: v.countUpTo(MAX_WORKER_THREADS), default: () => defaultWorkerThreads(availableParallelism()), defaultDoc: "0 on a machine of 1 or 2 cores, else one per core beyond the first (at most 4)", doc: "Threads beside the main one that check SPF/DKIM/DMARC/ARC and seal the copies (docs/operations.md, Memory); 0: on the main thread, about 18 MB less memory under load" },
  { section: "forwarding", key: "dkim_sign", parse: v.oneOf(FORWARDING_DKIM), default: "rewritten", live: true, doc: "When a forwarded copy gets this server's DKIM signature besides its ARC set: rewritten (only when the From was rewritten to the alias, the one case DMARC aligns with it) or always" },
  { section: "addresses", key: "random_subdomain", parse: v.bool, default: false, live: true, doc: "Addresses created by the API get a random subdomain unless the request or the domain says otherwise" },
  { section: "addresses", key: "subdomain_match", parse: v.bool, default: false, live: true, doc: "Domains accept mail for any subdomain (and the API may create addresses on one) unless the domain says otherwise" },
  { section: "api", key: "rate_limit", parse: v.positiveInt, default: 600, doc: "API requests per minute per token; more get 429" },
  { section: "webhooks", key: "timeout", name: "webhook_timeout", parse: v.positiveDuration, default: "60s", doc: "Timeout of one webhook request" },
  { section: "webhooks", key: "allow_private", name: "webhook_allow_private", parse: v.bool, default: false, doc: "Allow webhook URLs on loopback, private or link-local addresses (SSRF guard off)" },
  { section: "alerts", key: "email", parse: mailboxList, default: "", doc: "Admin addresses that get alerts by e-mail (comma list or TOML array; signed, sent through the outbox); empty: none" },
  { section: "alerts", key: "webhook_url", parse: v.optionalUrl, default: "", doc: "URL that gets each alert as signed JSON (X-Webhook-Signature, HMAC-SHA256 with <data dir>/alerts-webhook.key); private addresses only with webhooks.allow_private" },
  { section: "alerts", key: "ntfy_url", parse: v.optionalUrl, default: "", doc: "ntfy topic URL (or any compatible one) that gets each alert as text with Title and Priority headers; private addresses only with webhooks.allow_private" },
  { section: "alerts", key: "check_interval", parse: v.positiveDuration, default: "5m", doc: "How often the server checks the alert triggers (docs/operations.md, Alerts); each check also runs the DNS check of every managed domain" },
  { section: "alerts", key: "destination_failures", parse: v.positiveInt, default: 10, doc: "Alert when a destination domain deferred or refused at least this many copies in 15 minutes" },
  { section: "alerts", key: "auth_rejections", parse: v.positiveInt, default: 3, doc: "Alert when a destination domain refused at least this many copies in 15 minutes for authentication (5.7.20 to 5.7.27, RFC 7372)" },
  { section: "alerts", key: "dnsbl_zones", parse: hostnameList, default: "", doc: "DNS blocklists (e.g. zen.spamhaus.org, bl.spamcop.net; comma list or TOML array) on which this server's own addresses (the host name's A/AAAA) are looked up at each alert check; a listing raises an alert; empty: none" },
  { section: "alerts", key: "certificate_days", parse: v.positiveInt, default: 14, doc: "Alert when the TLS certificate (configured or from ACME; not the self-signed one) expires in fewer days than this" },
  { section: "alerts", key: "acme_failures", parse: v.positiveInt, default: 3, doc: "Alert when this many ACME orders in a row failed" },
  { section: "alerts", key: "disk_free", parse: v.byteSize, default: "1GB", doc: "Alert when less than this is free on the data directory's file system" },
  { section: "alerts", key: "outbox_size", parse: v.positiveInt, default: 50, doc: "Alert when this many messages (sent as an alias, DSNs, vacation replies, verification and alert mails) wait in the outbound queue for a retry" },
  { section: "alerts", key: "digest", parse: v.oneOf(DIGEST_PERIODS), default: "off", doc: "off, daily or weekly: a digest on the alert channels of the mail of the last day or week (messages by reason, the senders refused most, the aliases that got most mail)" },
  { section: "alerts", key: "alias_refusals", parse: v.positiveInt, default: 20, doc: "Alert when at least this many messages to one address were refused at DATA (spam, authentication, content) in 15 minutes: a catch-all being abused; the dashboard offers to refuse the name" },
  { section: "catchall", key: "learn", parse: v.oneOf(CATCHALL_LEARN_MODES), default: "suggest", live: true, form: { label: "Learning catch-all", hint: "off, suggest or apply" }, doc: "When a name a catch-all accepts gets only spam (rspamd, a DNSBL listing, failed authentication): suggest refusing it on the Catch-all page (suggest), refuse it with 550 5.1.1 at once (apply), or count nothing (off); an admin's refusal or allowance always stands (docs/aliases.md)" },
  { section: "catchall", key: "threshold", parse: v.positiveInt, default: 5, live: true, doc: "Spam messages a catch-all name must get, with no good one, before it is suggested (or, with catchall.learn = apply, refused)" },
  { section: "catchall", key: "dnsbl_zones", parse: hostnameList, default: "", live: true, doc: "DNS blocklists (e.g. zen.spamhaus.org; comma list or TOML array) on which the client address of a message to a catch-all name is looked up: a listing counts the message as spam for the learning catch-all (it refuses nothing by itself); empty: none" },
  { section: "greylist", key: "delay", parse: v.duration, default: 300, live: true, form: { label: "Greylisting delay", hint: "seconds, or with a unit (5m); 0 turns greylisting off" }, doc: "Greylisting delay in seconds (0 turns greylisting off)" },
  { section: "limits", key: "connections_per_hour", parse: v.positiveInt, default: 100, live: true, doc: "Connections in an hour from one sender (key) to one recipient; more get 421" },
  { section: "limits", key: "concurrent_connections", parse: v.positiveInt, default: 10, live: true, doc: "Concurrent connections from one sender (key); more get 421" },
  { section: "scan", key: "rspamd_url", parse: v.optionalUrl, default: "", live: true, form: { label: "rspamd URL", hint: "e.g. http://127.0.0.1:11333; empty turns scanning off" }, doc: "rspamd to scan messages with, e.g. http://127.0.0.1:11333 (empty: only GTUBE)" },
  { section: "scan", key: "fail_open", parse: v.bool, default: false, live: true, form: { label: "Deliver unscanned when rspamd is down", hint: "true or false" }, doc: "Deliver unscanned when rspamd is down (default: answer 421)" },
  { section: "metrics", key: "token", parse: v.optionalToken, default: "", live: true, secret: true, doc: "Bearer token for GET /metrics; when set every scrape must send it (loopback too), when empty only loopback may scrape" },
  { section: "log", key: "retention", parse: v.positiveDuration, default: "7d", live: true, form: { label: "Mail log retention", hint: "e.g. 7d" }, doc: "How long mail-log events are kept" },
  { section: "log", key: "max_events", parse: v.positiveInt, default: 500_000, live: true, doc: "Most mail-log events kept (the oldest go first), whatever their age: bounds the database (about 1 KB an event)" },
  { section: "log", key: "format", node: true, parse: v.oneOf(LOG_FORMATS), default: "auto", doc: "auto (text on a terminal, JSON otherwise), json or text" },
  { section: "log", key: "level", node: true, parse: v.oneOf(LOG_LEVELS), default: "info", doc: "debug, info, warn, error or silent" },
] as const satisfies readonly Setting[];

export const SETTINGS: readonly Setting[] = DECLARED;

// --- the Config type, derived from the declarations -----------------------------------------
type Declared = (typeof DECLARED)[number];
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
/** The parsed values of one section ("" for the top level), by camel-cased key: `smtp.max_size` → `smtp.maxSize`. */
type SectionValues<Section extends string> = { -readonly [S in Declared as S["section"] extends Section ? CamelCase<S["key"]> : never]: ReturnType<S["parse"]> };
type Parsed = SectionValues<""> & { -readonly [Section in Exclude<Declared["section"], "">]: SectionValues<Section> };

/** The parsed settings, plus what is derived from them (relative paths are resolved against the working directory). */
export type Config = Omit<Parsed, "smarthost" | "srs" | "acme"> & {
  dataDir: string;
  /** The TOML file that was read, or null when none exists. */
  configFile: string | null;
  /** A relay for all outbound mail (VPSes that block port 25), or null (no smarthost.host) to deliver to MX hosts directly. */
  smarthost: (Parsed["smarthost"] & { host: string }) | null;
  /** srs.domain, else the hostname. */
  srs: { domain: string };
  /** Certificates from an ACME CA (durations in milliseconds); with acme.enabled the directory URL is never empty. */
  acme: Parsed["acme"] & { directoryUrl: string };
};

function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The setting called `section.key` (or a top-level key) as `config check` lists it. */
export function findSetting(dotted: string): Setting | undefined {
  return SETTINGS.find((s) => settingKey(s) === dotted);
}

export function settingKey(s: Pick<Setting, "section" | "key">): string {
  return [s.section, s.key].filter(Boolean).join(".");
}

/** The admin UI's URL on this port (the configured one unless the server bound another). */
export function adminUrl(config: Pick<Config, "http">, port = config.http.port): string {
  const host = config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host;
  return `${config.http.tls ? "https" : "http"}://${host}:${port}/`;
}

/** Where people outside open links to this server: http.public_url, else `url` unless the admin port listens on loopback only. */
export function publicBaseUrl(config: Pick<Config, "http">, url = adminUrl(config)): string | null {
  return config.http.publicUrl ?? (/^(127\.|::1$|localhost$)/.test(config.http.host) ? null : url);
}

export const DATA_DIR_ENV = "MAILFERRY_DATA_DIR";
export const CONFIG_FILE_ENV = "MAILFERRY_CONFIG";

export function envName(s: Pick<Setting, "section" | "key" | "name">): string {
  return ["MAILFERRY", s.name ?? [s.section, s.key].filter(Boolean).join("_")].join("_").toUpperCase();
}

export function flagName(s: Pick<Setting, "section" | "key" | "name">): string {
  return (s.name ?? [s.section, s.key].filter(Boolean).join("-")).replaceAll("_", "-");
}

export function tomlName(s: Pick<Setting, "section" | "key">): string {
  return s.section ? `[${s.section}] ${s.key}` : s.key;
}

export class ConfigError extends Error {
  constructor(
    /** Where the bad value came from, e.g. `MAILFERRY_SMTP_PORT` or `--smtp-port`. */
    readonly source: string,
    message: string,
  ) {
    super(`invalid configuration: ${message}`);
  }
}

/** The origin `config check`, the API and the settings page show for a value kept in the database. */
export const SHARED_ORIGIN = "database";

export interface ConfigInput {
  env?: Record<string, string | undefined>;
  /** Settings kept in the database with PostgreSQL (all but those declared `node`), by key as `config check` lists them. */
  shared?: Record<string, string>;
  /** Flag values by flag name without dashes, e.g. `{"smtp-port": "2526"}`. */
  flags?: Record<string, string | undefined>;
  cwd?: string;
}

/** Each effective value (as written in config, e.g. "3m") and where it came from, for `config check`. */
export type Effective = EffectiveValue[];
export type EffectiveValue = { key: string; value: unknown; shown: string; origin: string };

export function loadConfig(input: ConfigInput = {}): Config {
  return loadConfigWithOrigins(input).config;
}

export function loadConfigWithOrigins({ env = process.env, flags = {}, cwd = process.cwd(), shared = {} }: ConfigInput): { config: Config; effective: Effective } {
  const dataDir = resolve(cwd, flags["data-dir"] ?? env[DATA_DIR_ENV] ?? "./data");
  const explicitFile = flags["config"] ?? env[CONFIG_FILE_ENV];
  const configPath = explicitFile ? resolve(cwd, explicitFile) : resolve(dataDir, "config.toml");
  const toml = readToml(configPath, explicitFile ? (flags["config"] ? "--config" : CONFIG_FILE_ENV) : null);

  const values = new Map<Setting, unknown>();
  const effective: Effective = [{ key: "data_dir", value: dataDir, shown: dataDir, origin: flags["data-dir"] ? "--data-dir" : env[DATA_DIR_ENV] ? DATA_DIR_ENV : "default" }];
  for (const s of SETTINGS) {
    const fromToml = s.section ? (toml.data[s.section] as Record<string, unknown> | undefined)?.[s.key] : toml.data[s.key];
    const candidates: [unknown, string][] = [
      [flags[flagName(s)], `--${flagName(s)}`],
      [env[envName(s)], envName(s)],
      [s.node ? undefined : shared[settingKey(s)], SHARED_ORIGIN],
      [fromToml, `${tomlName(s)} in ${configPath}`],
    ];
    // A bad value in config.toml is reported even when the environment or a flag overrides it.
    if (fromToml !== undefined) parseOrThrow(s, fromToml, `${tomlName(s)} in ${configPath}`);
    const [raw, origin] = candidates.find(([value]) => value !== undefined) ?? [typeof s.default === "function" ? s.default() : s.default, "default"];
    const source = origin === "default" ? `${tomlName(s)} (default)` : origin === SHARED_ORIGIN ? `${tomlName(s)} in the database` : origin;
    const value = parseOrThrow(s, raw, source);
    values.set(s, value);
    effective.push({ key: settingKey(s), value, shown: show(s, value), origin });
  }
  const parsed = nest(values);
  checkTogether(parsed);
  return { config: derive(parsed, { dataDir, configFile: toml.path, cwd }), effective };
}

/** The parsed values as Config nests them: `[smtp] max_size` at `smtp.maxSize`. */
function nest(values: Map<Setting, unknown>): Parsed {
  const top: Record<string, unknown> = {};
  for (const [s, value] of values) {
    const holder = s.section ? ((top[s.section] ??= {}) as Record<string, unknown>) : top;
    holder[camelCase(s.key)] = value;
  }
  // The one place the declarations' types meet the values their parsers returned.
  return top as Parsed;
}

/** Config from the parsed settings: where they were read from, relative paths made absolute, and the values that default to others. */
function derive(parsed: Parsed, place: { dataDir: string; configFile: string | null; cwd: string }): Config {
  const absolute = (p: string | null) => (p === null || isAbsolute(p) ? p : resolve(place.cwd, p));
  const { host } = parsed.smarthost;
  return {
    ...parsed,
    dataDir: place.dataDir,
    configFile: place.configFile,
    outbound: { ...parsed.outbound, caFile: absolute(parsed.outbound.caFile) },
    smarthost: host ? { ...parsed.smarthost, host } : null,
    srs: { domain: parsed.srs.domain ?? parsed.hostname },
    tls: { cert: absolute(parsed.tls.cert), key: absolute(parsed.tls.key) },
    // checkTogether refuses an empty directory URL when ACME is on; off, nothing reads it.
    acme: { ...parsed.acme, directoryUrl: parsed.acme.directoryUrl ?? "", caFile: absolute(parsed.acme.caFile) },
  };
}

/**
 * Copies the settings that apply at once (declared `live`) from `next` into
 * `config`, the object the running parts read on each use; the rest waits for a restart.
 */
export function applyLiveSettings(config: Config, next: Config): void {
  const into = config as unknown as Record<string, unknown>;
  const from = next as unknown as Record<string, unknown>;
  for (const s of SETTINGS.filter((s) => s.live)) {
    // A section that applies whole is replaced whole: smarthost is null without a host.
    if (s.section && SETTINGS.every((other) => other.section !== s.section || other.live)) into[s.section] = from[s.section];
    else if (s.section) (into[s.section] as Record<string, unknown>)[camelCase(s.key)] = (from[s.section] as Record<string, unknown>)[camelCase(s.key)];
    else into[camelCase(s.key)] = from[camelCase(s.key)];
  }
}

export const SECRET_MASK = "••••••";

/** The one rule for secrets (declared `secret`): anyone may see that one is set, never its value. */
export function maskedValue<T>(key: string, value: T): T | typeof SECRET_MASK {
  return findSetting(key)?.secret && value ? SECRET_MASK : value;
}

/** An effective value as `config check`, the API and the settings page show it. */
export function masked(entry: EffectiveValue): EffectiveValue {
  return { ...entry, value: maskedValue(entry.key, entry.value), shown: maskedValue(entry.key, entry.shown) };
}

/** The contents of a file a setting names, or a ConfigError naming the setting when it cannot be read. */
export function readSettingFile(path: string, setting: Pick<Setting, "section" | "key">): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const name = envName(setting);
    throw new ConfigError(name, `${name}=${JSON.stringify(path)}: cannot read file (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/** all | tokens | off; the booleans of earlier releases keep their meaning (true: all, false: off). */
function verifyDestinations(raw: unknown): VerifyDestinations {
  const mode = typeof raw === "string" ? raw.trim().toLowerCase() : raw;
  if ((VERIFY_MODES as readonly unknown[]).includes(mode)) return mode as VerifyDestinations;
  try {
    return v.bool(raw) ? "all" : "off";
  } catch {
    throw new v.ValueError(`must be one of: ${VERIFY_MODES.join(", ")} (true and false mean all and off)`);
  }
}

/** An email address such as an account contact, or null when empty. */
/** The items of a comma list or a TOML array, empty ones left out. */
function listItems(raw: unknown, what: string): unknown[] {
  const items = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : null;
  if (!items) throw new v.ValueError(`must be a comma-separated list of ${what}`);
  return items.filter((item) => typeof item !== "string" || item.trim() !== "");
}

function hostnameList(raw: unknown): string[] {
  return listItems(raw, "host names").map(v.hostname);
}

function mailboxList(raw: unknown): string[] {
  return listItems(raw, "email addresses").map((item) => {
    const address = optionalMailbox(item);
    if (address === null) throw new v.ValueError("must be a comma-separated list of email addresses");
    return address;
  });
}

function optionalMailbox(raw: unknown): string | null {
  const text = v.optionalPath(raw);
  if (text === null) return null;
  const mailbox = parseMailbox(text);
  if (!mailbox || mailbox.isLiteral) throw new v.ValueError("must be an email address such as postmaster@example.com");
  return mailbox.address;
}

/** Settings that are each valid but cannot go together: TLS certificate and key, and ACME with either. */
function checkTogether(parsed: Parsed): void {
  const name = (section: string, key: string) => envName({ section, key });
  const { tls, acme } = parsed;
  if ((tls.cert === null) !== (tls.key === null)) {
    const missing = tls.cert === null ? name("tls", "cert") : name("tls", "key");
    throw new ConfigError(missing, `${missing} is missing: set both the TLS certificate and key, or neither`);
  }
  if (!acme.enabled) return;
  if (tls.cert !== null) {
    throw new ConfigError(name("tls", "cert"), `${name("acme", "enabled")}=true and ${name("tls", "cert")} are both set: use the ACME certificate or your own, not both`);
  }
  if (acme.directoryUrl === null) throw new ConfigError(name("acme", "directory_url"), `${name("acme", "directory_url")} is empty: ACME needs the CA's directory URL`);
  if (acme.httpPort !== 0 && acme.httpPort === acme.httpsPort) {
    throw new ConfigError(name("acme", "https_port"), `${name("acme", "http_port")} and ${name("acme", "https_port")} are both ${acme.httpPort}: they need a port each`);
  }
}

function parseOrThrow(s: Setting, raw: unknown, source: string): unknown {
  try {
    return s.parse(raw);
  } catch (err) {
    if (!(err instanceof v.ValueError)) throw err;
    // A secret (a password in a database URL) is not repeated into logs and terminals.
    throw new ConfigError(source, `${source}=${s.secret ? SECRET_MASK : JSON.stringify(raw)}: ${err.message}`);
  }
}

/** A parsed value written back the way an admin would type it. */
function show(s: Setting, value: unknown): string {
  if (value === null || value === undefined) return "";
  if (v.parsesDuration(s.parse)) return v.formatDuration(value as number);
  if (Array.isArray(value)) return value.map((h: v.HostPort | string) => (typeof h === "string" ? h : `${h.host.includes(":") ? `[${h.host}]` : h.host}:${h.port}`)).join(",");
  return String(value);
}

function readToml(path: string, requiredBy: string | null): { path: string | null; data: Record<string, unknown> } {
  if (!existsSync(path)) {
    if (requiredBy) throw new ConfigError(requiredBy, `${requiredBy}=${JSON.stringify(path)}: file does not exist`);
    return { path: null, data: {} };
  }
  let data: Record<string, unknown>;
  const text = readFileSync(path, "utf8");
  try {
    data = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(path, `${path} (line ${firstBadLine(text)}): ${(err as Error).message ?? String(err)}`);
  }
  rejectUnknownKeys(path, data);
  return { path, data };
}

/**
 * The first line at which the file stops parsing. Bun's TOML errors carry a
 * line number that keeps counting across parses in one process, so it is
 * found here by parsing growing prefixes of the file.
 */
function firstBadLine(text: string): number {
  const lines = text.split("\n");
  for (let n = 1; n <= lines.length; n++) {
    try {
      Bun.TOML.parse(lines.slice(0, n).join("\n"));
    } catch {
      return n;
    }
  }
  return lines.length;
}

/** A misspelt key would otherwise be silently ignored, so every unknown key is an error. */
function rejectUnknownKeys(path: string, data: Record<string, unknown>): void {
  const known = new Set(SETTINGS.map(settingKey));
  const sections = new Set(SETTINGS.map((s) => s.section).filter(Boolean));
  for (const [top, value] of Object.entries(data)) {
    if (sections.has(top) && value && typeof value === "object" && !Array.isArray(value)) {
      for (const key of Object.keys(value)) {
        if (!known.has(`${top}.${key}`)) throw new ConfigError(`[${top}] ${key}`, `[${top}] ${key} in ${path}: unknown setting`);
      }
    } else if (!known.has(top)) {
      throw new ConfigError(top, `${top} in ${path}: unknown ${sections.has(top) ? "section form (expected a [table])" : "setting"}`);
    }
  }
}

/** Nameservers from /etc/resolv.conf, as the system would use them. */
/**
 * On 1 or 2 cores, memory is the scarcer resource: a worker's own JavaScript VM
 * costs about 18 MB under load, and measured on 2 cores it forwarded up to ~15%
 * more than the main thread alone (docs/benchmarks.md). With more cores the
 * workers' parallelism pays.
 */
export function defaultWorkerThreads(cores: number): number {
  return cores <= 2 ? 0 : Math.min(4, cores - 1);
}

export function systemResolvers(resolvConf = "/etc/resolv.conf"): string {
  let servers: string[] = [];
  try {
    servers = readFileSync(resolvConf, "utf8")
      .split("\n")
      .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
      .filter((s): s is string => !!s)
      .map((s) => (s.includes(":") ? `[${s.replace(/%.*$/, "")}]:53` : `${s}:53`));
  } catch {
    // no resolv.conf: fall through to the local resolver
  }
  return servers.length ? servers.join(",") : "127.0.0.1:53";
}
