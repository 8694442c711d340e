// The database, typed once: every query in src/store is checked against these tables.
import type { ColumnType, Generated, Insertable, Selectable } from "kysely";
import type { Reason } from "../mail/decision.ts";
import type { AliasMatcher, DisabledMode } from "../aliases/rules.ts";

/** Milliseconds since the epoch. */
type Timestamp = number;

export interface DomainsTable {
  id: Generated<number>;
  /** Lower-case ASCII (punycode) name without trailing dot. */
  name: string;
  catch_all: ColumnType<number, number | undefined, number>;
  max_targets: ColumnType<number, number | undefined, number>;
  delivery_port: ColumnType<number | null, number | null | undefined, number | null>;
  /** 1/0, or null: follow `[addresses] subdomain_match`. */
  accept_subdomains: ColumnType<number | null, number | null | undefined, number | null>;
  /** 1/0, or null: follow `[addresses] random_subdomain`. */
  random_subdomain: ColumnType<number | null, number | null | undefined, number | null>;
  random_subdomain_length: ColumnType<number, number | undefined, number>;
  /** 1: messages for this domain are checked by the configured spam scanner. */
  scan_spam: ColumnType<number, number | undefined, number>;
  /** hex key for X-Webhook-Signature (HMAC-SHA256 of the body). */
  webhook_key: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
  updated_at: Timestamp;
}


export interface AliasesTable {
  id: Generated<number>;
  domain_id: number;
  /** Lower-case labels in front of the domain for an alias on a subdomain; "" for the domain itself. */
  subdomain: ColumnType<string, string | undefined, string>;
  matcher: AliasMatcher;
  /** exact: the lower-case local part; regex: the pattern source; catch-all: "*". */
  pattern: string;
  /** regex only: the `/g` suffix was given (kept for round-tripping the TXT syntax). */
  regex_global: ColumnType<number, number | undefined, number>;
  /** JSON array of recipients in order: addresses, domain names or http(s) URLs. */
  recipients: string;
  enabled: ColumnType<number, number | undefined, number>;
  /** What a disabled alias answers; null while enabled. */
  disabled_mode: DisabledMode | null;
  description: ColumnType<string, string | undefined, string>;
  /** 1: saved by a write-scope token, so its outside destinations forward only once confirmed (verify_destinations = tokens). */
  confirm_targets: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** A setting changed at run time that all nodes on one PostgreSQL share (migration 023). */
export interface SharedSettingsTable {
  /** As `config check` lists it: "greylist.delay". */
  key: string;
  /** As typed: what config.toml or the environment would hold. */
  value: string;
  updated_at: Timestamp;
}

export interface SettingsTable {
  key: string;
  /** JSON value. */
  value: string;
  updated_at: Timestamp;
}

export type EventStage = "connect" | "mail" | "rcpt" | "data" | "delivery";

export interface EventsTable {
  id: Generated<number>;
  at: Timestamp;
  session_id: string;
  remote_ip: string;
  stage: EventStage;
  code: number;
  enhanced: string;
  text: string;
  /** Why: the reason token of the decision (docs/architecture.md, "Reasons"); null on events older than the column. */
  reason: Reason | null;
  mail_from: string | null;
  /** JSON array of recipient addresses the verdict is about. */
  recipients: string | null;
  /** Recipient domain, for per-domain views. */
  domain: string | null;
  message_id: string | null;
  subject: string | null;
  /** The message's header block (never the body), capped in size. */
  headers: string | null;
  /** JSON object with stage-specific facts (helo, client host, TLS, size, …). */
  detail: string | null;
}

export interface FingerprintsTable {
  /** sha256 hex of the message's identity (see src/delivery/fingerprint.ts). */
  id: string;
  first_seen: Timestamp;
  last_seen: Timestamp;
}

export interface DeliveredTable {
  fingerprint: string;
  /** Lower-cased target address or webhook URL that accepted the message. */
  target: string;
  at: Timestamp;
}

export interface BouncedTable {
  fingerprint: string;
  target: string;
  code: number;
  at: Timestamp;
}

/** The outbound queue (docs/delivery-and-authentication.md, "Outbound queue"). */
export interface OutboxTable {
  id: Generated<number>;
  /** Envelope sender; "" (the null sender) for DSNs and notices. */
  mail_from: ColumnType<string, string | undefined, string>;
  /** Who gets the DSN or delay notice; null for mail mailferry writes itself. */
  submitter: string | null;
  /** The complete message as queued (signed at each attempt). */
  raw: Uint8Array;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt: Timestamp;
  last_error: string | null;
  created_at: Timestamp;
  delay_notice_at: Timestamp | null;
}

export interface OutboxRecipientsTable {
  outbox_id: number;
  address: string;
  status: ColumnType<"pending" | "delivered" | "failed", "pending" | undefined, "delivered" | "failed">;
  reply_code: number | null;
  reply_enhanced: string | null;
  reply_text: string | null;
  remote_mta: string | null;
}

export interface DkimKeysTable {
  id: Generated<number>;
  domain_id: number;
  selector: string;
  algorithm: "rsa" | "ed25519";
  /** PKCS#8 PEM. */
  private_key: string;
  /** base64 SubjectPublicKeyInfo (RSA) or raw key (ed25519), as the DNS record's p= value. */
  public_key: string;
  created_at: Timestamp;
  /** When it started signing; null while pending (published, waiting for DNS to serve its record). */
  activated_at: Timestamp | null;
  /** When the next key replaced it: still published for a week (mail signed with it may be in flight), no longer signing. */
  retired_at: Timestamp | null;
}

/** The DKIM key of the server's host name (one row): signs server notices when no managed domain covers the host name. */
export interface ServerDkimKeyTable {
  id: number;
  selector: string;
  algorithm: "rsa";
  /** PKCS#8 PEM. */
  private_key: string;
  /** base64 SubjectPublicKeyInfo, the DNS record's p= value. */
  public_key: string;
  created_at: Timestamp;
}

export type AllowKind = "ip" | "cidr" | "domain" | "address";

export interface AllowlistTable {
  id: Generated<number>;
  kind: AllowKind;
  value: string;
  note: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
}

export interface GreylistTable {
  /** `<sender key>|<recipient root domain>`. */
  key: string;
  first_seen: Timestamp;
  /** When a retry came after the delay; null while still greylisted. */
  passed_at: Timestamp | null;
  last_seen: Timestamp;
}

/** A sender key that passed greylisting once: not greylisted again while seen within 30 days. */
export interface GreylistSenderTable {
  sender_key: string;
  passed_at: Timestamp;
  last_seen: Timestamp;
}

export type DenyKind = "ip" | "cidr" | "domain" | "address";

export interface DenylistTable {
  id: Generated<number>;
  kind: DenyKind;
  value: string;
  reason: ColumnType<string, string | undefined, string>;
  source: "admin" | "auto";
  expires_at: Timestamp | null;
  created_at: Timestamp;
}

/** A counter over a window that starts at its first count (abuse: 24 h; rate: 1 h). */
export interface CounterTable {
  key: string;
  window_start: Timestamp;
  count: number;
}

export interface VacationsTable {
  alias_id: number;
  enabled: ColumnType<number, number | undefined, number>;
  /** Inclusive UTC dates, YYYY-MM-DD; null: no bound. */
  start_date: string | null;
  end_date: string | null;
  subject: string;
  message: string;
  updated_at: Timestamp;
}

export interface VacationRepliesTable {
  alias_id: number;
  /** The sender's address (allowlisted senders) or root domain (others). */
  sender: string;
  sent_at: Timestamp;
}

export interface AdminsTable {
  id: Generated<number>;
  username: string;
  /** argon2id (Bun.password). */
  password_hash: string;
  totp_secret: string | null;
  totp_enabled: ColumnType<number, number | undefined, number>;
  /** JSON array of sha256 hashes of unused recovery codes. */
  recovery_codes: ColumnType<string, string | undefined, string>;
  /** The TOTP time step of the last code accepted: a code is good once. */
  totp_last_step: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebSessionsTable {
  /** sha256 of the cookie token: a stolen database does not yield live sessions. */
  id: string;
  admin_id: number;
  csrf: string;
  ip: string;
  user_agent: ColumnType<string, string | undefined, string>;
  created_at: Timestamp;
  last_seen: Timestamp;
  expires_at: Timestamp;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: Timestamp;
  /** "admin:<name>", "token:<name>" or "cli". */
  actor: string;
  ip: string;
  action: string;
  target: string;
  before: string | null;
  after: string | null;
}

export type StatCategory = "forwarded" | "rejected" | "greylisted" | "spam" | "bounced" | "webhook";

export interface DailyStatsTable {
  /** YYYY-MM-DD (UTC). */
  day: string;
  /** Recipient domain, "" when none applies. */
  domain: string;
  category: StatCategory;
  count: number;
}

/** Addresses outside the managed domains that aliases forward to, and whether they confirmed. */
export interface DestinationsTable {
  id: Generated<number>;
  /** Lower-case. */
  address: string;
  created_at: Timestamp;
  verified_at: Timestamp | null;
  last_sent_at: Timestamp | null;
  sent_count: ColumnType<number, number | undefined, number>;
  /** What confirmed it: `admin:alice`, `cli`, `token:deploy` (admin scope), `reply`, `link` or `code`; null while pending. */
  confirmed_by: string | null;
}

export type TokenScope = "read" | "write" | "admin";

export interface ApiTokensTable {
  id: Generated<number>;
  name: string;
  scope: TokenScope;
  /** sha256 hex of the token (tokens are random, so no slow hash is needed). */
  token_hash: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

/** What an app password may send as: one address, or any address of a domain (docs/send-as.md). */
export type AppPasswordKind = "address" | "domain";

export interface AppPasswordsTable {
  id: Generated<number>;
  name: string;
  kind: AppPasswordKind;
  /** The address or the domain, lower-case. */
  identity: string;
  /** sha256 hex of the secret (random, 160 bits: no slow hash is needed; see store/passwords.ts). */
  secret_hash: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

/** An alert, started and perhaps resolved (src/alerts/, docs/operations.md "Alerts"). */
export interface AlertsTable {
  /** What the alert is about, e.g. `destination_failures:gmail.com`: one row per key. */
  key: string;
  kind: string;
  title: string;
  detail: string;
  started_at: Timestamp;
  /** When a notice about it was last sent: it is repeated at most daily. */
  last_sent_at: Timestamp;
  /** Null while it lasts. */
  resolved_at: Timestamp | null;
}

/** What became of a name a catch-all accepted (src/policy/catchall.ts, docs/aliases.md "Learning catch-all"). */
export type CatchAllState = "learning" | "suggested" | "refused" | "allowed";

/** One name a catch-all alias accepted, with the verdicts on its messages. */
export interface CatchAllNamesTable {
  /** The recipient's domain (lower case). */
  domain: string;
  /** The local part without its +tag (lower case). */
  name: string;
  /** Messages judged spam (rspamd, DNSBL, authentication failure). */
  spam: number;
  /** Messages accepted and not judged spam. */
  good: number;
  state: CatchAllState;
  last_seen: Timestamp;
  /** When an admin (or the automatic refusal) last set the state; null while learning. */
  decided_at: Timestamp | null;
  /** "auto", or the actor ("admin:alice", "token:deploy", "cli"). */
  decided_by: string | null;
}

/** A `mailferry serve` on this database (docs/multi-node.md), by its configured hostname. */
export interface NodesTable {
  hostname: string;
  /** When it last started. */
  started_at: Timestamp;
  /** Refreshed every 15 seconds while it runs. */
  last_seen: Timestamp;
}

/** A node's open SMTP sessions from one sender key (PostgreSQL only: the concurrent-connection limit across nodes). */
export interface NodeSessionsTable {
  node: string;
  sender_key: string;
  count: number;
}

/** A key shared by the nodes on one PostgreSQL (src/store/secrets.ts), by its file name. */
export interface SecretsTable {
  name: string;
  value: string;
  created_at: Timestamp;
}

/** The ACME certificate of a node's hostname, PEM (src/store/acme.ts). */
export interface AcmeCertificatesTable {
  hostname: string;
  cert: string;
  cert_key: string;
  directory_url: string;
  issued_at: Timestamp;
}

/** A pending HTTP-01 challenge (RFC 8555 section 8.3), answered by any node. */
export interface AcmeChallengesTable {
  token: string;
  key_authorization: string;
  created_at: Timestamp;
}

export interface Schema {
  domains: DomainsTable;
  aliases: AliasesTable;
  settings: SettingsTable;
  shared_settings: SharedSettingsTable;
  events: EventsTable;
  fingerprints: FingerprintsTable;
  delivered: DeliveredTable;
  bounced: BouncedTable;
  outbox: OutboxTable;
  outbox_recipients: OutboxRecipientsTable;
  dkim_keys: DkimKeysTable;
  server_dkim_key: ServerDkimKeyTable;
  allowlist: AllowlistTable;
  greylist: GreylistTable;
  greylist_senders: GreylistSenderTable;
  denylist: DenylistTable;
  abuse_counts: CounterTable;
  rate_counts: CounterTable;
  vacations: VacationsTable;
  vacation_replies: VacationRepliesTable;
  admins: AdminsTable;
  web_sessions: WebSessionsTable;
  login_failures: CounterTable;
  audit_log: AuditLogTable;
  daily_stats: DailyStatsTable;
  destinations: DestinationsTable;
  api_tokens: ApiTokensTable;
  alerts: AlertsTable;
  catchall_names: CatchAllNamesTable;
  app_passwords: AppPasswordsTable;
  nodes: NodesTable;
  node_sessions: NodeSessionsTable;
  secrets: SecretsTable;
  acme_certificates: AcmeCertificatesTable;
  acme_challenges: AcmeChallengesTable;
}

export type Domain = Selectable<DomainsTable>;
export type Alias = Selectable<AliasesTable>;
export type Event = Selectable<EventsTable>;
export type NewEvent = Insertable<EventsTable>;
export type DkimKey = Selectable<DkimKeysTable>;
export type ServerDkimKey = Selectable<ServerDkimKeyTable>;
export type Vacation = Selectable<VacationsTable>;
export type Admin = Selectable<AdminsTable>;
export type AuditEntry = Selectable<AuditLogTable>;
export type Destination = Selectable<DestinationsTable>;
export type ApiToken = Selectable<ApiTokensTable>;
export type Alert = Selectable<AlertsTable>;
export type CatchAllName = Selectable<CatchAllNamesTable>;
export type AppPassword = Selectable<AppPasswordsTable>;
