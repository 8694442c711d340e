// The API's shapes, once: zod validates every request with them and the
// OpenAPI document is generated from them. Request bodies are strict
// (unknown fields are refused).
import { z } from "@hono/zod-openapi";
import { STAT_CATEGORIES } from "../../store/stats.ts";
import { TOKEN_SCOPES } from "../../store/tokens.ts";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(["bad_request", "unauthorized", "forbidden", "not_found", "conflict", "invalid", "too_large", "rate_limited", "internal"]),
      message: z.string(),
      field: z.string().optional().openapi({ description: "The request field the error is about" }),
    }),
  })
  .openapi("Error");

const iso = z.string().openapi({ format: "date-time", example: "2026-11-25T12:00:00.000Z" });
const isoOrNull = iso.nullable();

export const Page = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50).openapi({ description: "Items per page (1–500)" }),
  cursor: z.string().regex(/^\d+$/, "a cursor from next_cursor").optional().openapi({ description: "next_cursor of the previous page" }),
});
export const nextCursor = z.string().nullable().openapi({ description: "Pass as cursor for the next page; null on the last page" });

// --- domains -------------------------------------------------------------------------
export const DomainBody = z
  .object({
    name: z.string(),
    catch_all: z.boolean(),
    max_targets: z.number().int(),
    delivery_port: z.number().int().nullable(),
    accept_subdomains: z.boolean().nullable().openapi({ description: "null: follows [addresses] subdomain_match" }),
    random_subdomain: z.boolean().nullable().openapi({ description: "null: follows [addresses] random_subdomain" }),
    random_subdomain_length: z.number().int(),
    scan_spam: z.boolean(),
    effective: z.object({ accept_subdomains: z.boolean(), random_subdomain: z.boolean() }),
    created_at: iso,
    updated_at: iso,
  })
  .openapi("Domain");

export const DomainCreate = z.strictObject({ name: z.string().min(1).max(253).openapi({ example: "example.com" }), dkim_selector: z.string().max(63).optional() }).openapi("DomainCreate");

export const DomainSettingsPatch = z
  .strictObject({
    catch_all: z.boolean().optional(),
    max_targets: z.number().int().optional(),
    delivery_port: z.number().int().nullable().optional(),
    accept_subdomains: z.boolean().nullable().optional().openapi({ description: "null: follow the configuration" }),
    random_subdomain: z.boolean().nullable().optional().openapi({ description: "null: follow the configuration" }),
    random_subdomain_length: z.number().int().optional(),
    scan_spam: z.boolean().optional(),
  })
  .openapi("DomainSettingsPatch");

export const DnsRecordBody = z
  .object({
    purpose: z.string(),
    type: z.enum(["MX", "TXT", "CNAME", "A", "AAAA", "PTR"]),
    name: z.string(),
    value: z.string(),
    ttl: z.number().int(),
    level: z.enum(["required", "recommended"]),
    status: z.enum(["ok", "weak", "missing", "different", "invalid"]).openapi({
      description:
        "What DNS publishes now, judged by meaning for SPF (evaluated for this server's addresses), DMARC (any valid policy) and DKIM (the same key): ok; weak (works, but lets anyone send as the domain); missing; different (does not do its job); invalid (receivers cannot use it)",
    }),
    mark: z.enum(["✓", "✗", "!"]).openapi({ description: "As `mailferry dns check` shows it: ✗ fails the check, ! is a recommendation" }),
    found: z.array(z.string()),
    error: z.string().optional(),
    note: z.string().optional().openapi({ description: "The judgement in words (a recommendation when ok)" }),
  })
  .openapi("DnsRecord");

export const DomainName = z.object({ name: z.string().openapi({ param: { name: "name", in: "path" }, example: "example.com" }) });

// --- aliases -------------------------------------------------------------------------
const disabled = z.enum(["drop", "soft", "hard"]).nullable().openapi({ description: "null: enabled; drop: accept and discard; soft: 421; hard: 550" });

export const AliasBody = z
  .object({
    id: z.number().int(),
    domain: z.string().openapi({ description: "The managed domain" }),
    subdomain: z.string().openapi({ description: 'Labels in front of the domain, "" for the domain itself' }),
    name: z.string().openapi({ description: "hello, * (catch-all) or /regex/ (/regex/g)" }),
    matcher: z.enum(["exact", "regex", "catch-all"]),
    recipients: z.array(z.string()),
    disabled,
    description: z.string(),
  })
  .openapi("Alias");

export const AliasCreate = z
  .strictObject({
    domain: z.string().min(1).max(253).openapi({ description: "A managed domain, or a subdomain of one that accepts subdomains", example: "example.com" }),
    name: z.string().min(1).max(300).openapi({ example: "hello" }),
    recipients: z.array(z.string().max(2048)).max(1000).default([]),
    disabled: disabled.optional(),
    description: z.string().max(10_000).optional(),
  })
  .openapi("AliasCreate");

export const AliasPatch = z
  .strictObject({ recipients: z.array(z.string().max(2048)).max(1000).optional(), disabled: disabled.optional(), description: z.string().max(10_000).optional() })
  .openapi("AliasPatch");

export const AliasId = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" }, example: 1 }) });

export const AliasQuery = Page.extend({
  domain: z.string().max(253).optional().openapi({ description: "Only this domain (with its subdomains)" }),
  q: z.string().max(200).optional().openapi({ description: "Text in the name, recipients or description" }),
});

export const ImportBody = z
  .strictObject({
    domain: z.string().min(1).max(253),
    text: z.string().max(1_000_000).openapi({ description: "Forward Email TXT syntax, one value per line" }),
    apply: z.boolean().default(false).openapi({ description: "false: a dry run that only reports" }),
    replace: z.boolean().default(false).openapi({ description: "Delete the domain's aliases first (in the same transaction)" }),
  })
  .openapi("AliasImport");

/** Part of every response that saved an alias: see docs/aliases.md, "Destinations". */
export const WaitingFields = {
  verification_sent: z.array(z.string()).openapi({ description: "Destinations a verification mail was just sent to" }),
  waiting_confirmation: z
    .array(z.object({ target: z.string(), why: z.string() }))
    .openapi({ description: "Targets outside the managed domains that get no mail until their owner confirms, and why" }),
};

export const ImportReportBody = z
  .object({
    domain: z.string(),
    applied: z.boolean(),
    aliases: z.array(z.object({ name: z.string(), recipients: z.array(z.string()), disabled })),
    port: z.number().int().nullable(),
    ...WaitingFields,
  })
  .openapi("AliasImportReport");

export const ImportErrors = z
  .object({
    error: ErrorBody.shape.error,
    errors: z.array(z.object({ line: z.number().int(), column: z.number().int(), token: z.string(), message: z.string() })),
  })
  .openapi("AliasImportErrors");

export const TestBody = z.strictObject({ address: z.string().min(1).max(320).openapi({ example: "hello+news@example.com" }) }).openapi("AddressTest");

export const TestResult = z
  .object({
    address: z.string(),
    action: z.enum(["deliver", "drop", "refuse"]),
    reply: z.object({ code: z.number().int(), enhanced: z.string(), text: z.string() }).nullable().openapi({ description: "The SMTP answer a refused recipient gets" }),
    alias: z.object({ id: z.number().int(), domain: z.string(), name: z.string() }).nullable(),
    targets: z.array(z.object({ kind: z.enum(["address", "webhook"]), target: z.string(), port: z.number().int().nullable(), alias: z.string() })),
    unverified: z.array(z.string()).openapi({ description: "Destinations left out until they are verified" }),
    explanation: z.string(),
  })
  .openapi("AddressTestResult");

// --- destinations and addresses --------------------------------------------------------
export const DestinationBody = z
  .object({ address: z.string(), status: z.enum(["pending", "verified"]), created_at: iso, verified_at: isoOrNull, last_sent_at: isoOrNull })
  .openapi("Destination");

export const DestinationCreate = z.strictObject({ address: z.string().min(3).max(320).openapi({ example: "me@gmail.com" }) }).openapi("DestinationCreate");
export const DestinationAddress = z.object({ address: z.string().openapi({ param: { name: "address", in: "path" }, example: "me@gmail.com" }) });

export const AddressCreate = z
  .strictObject({
    name: z.string().min(1).max(1000).optional().openapi({ description: "The local part; omitted: a random one" }),
    domain: z.string().min(1).max(253).openapi({ example: "example.com" }),
    subdomain: z.string().min(1).max(1000).optional().openapi({ description: "e.g. team or dev.team; needs the domain's subdomain matching", example: "team" }),
    random_subdomain: z.boolean().optional().openapi({ description: "Append a random label; omitted: the domain's setting" }),
    targets: z.array(z.string().max(2048)).min(1).max(1000),
    description: z.string().max(500).optional(),
  })
  .openapi("AddressCreate");

export const AddressCreated = z.object({ address: z.string().openapi({ example: "name@x7k2p9q1.example.com" }), alias: AliasBody, ...WaitingFields }).openapi("AddressCreated");

// --- mail log and stats ------------------------------------------------------------------
export const EventBody = z
  .object({
    id: z.number().int(),
    at: iso,
    session_id: z.string(),
    remote_ip: z.string(),
    stage: z.string(),
    code: z.number().int(),
    enhanced: z.string(),
    text: z.string(),
    mail_from: z.string().nullable(),
    recipients: z.array(z.string()),
    domain: z.string().nullable(),
    message_id: z.string().nullable(),
    subject: z.string().nullable(),
    headers: z.string().nullable().openapi({ description: "The header block only; bodies are never stored" }),
    detail: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("LogEvent");

export const AlertBody = z
  .object({
    key: z.string().openapi({ description: "What the alert is about, as kind:subject", example: "destination_failures:gmail.com" }),
    kind: z.string(),
    title: z.string(),
    detail: z.string(),
    started_at: z.string(),
    last_sent_at: z.string().openapi({ description: "When a notice about it was last sent" }),
    resolved_at: z.string().nullable().openapi({ description: "null while it lasts" }),
  })
  .openapi("Alert");

export const NodeBody = z
  .object({
    hostname: z.string().openapi({ example: "mx1.example.com" }),
    alive: z.boolean().openapi({ description: "Seen within the last minute (a running node refreshes every 15 seconds)" }),
    started_at: z.string(),
    last_seen: z.string(),
  })
  .openapi("Node");

export const Story = z
  .object({
    session_id: z.string(),
    steps: z.array(
      z.object({
        title: z.string(),
        badge: z.enum(["ok", "fail", "warn", "info"]),
        lines: z.array(z.string()),
        action: z.object({ label: z.string(), path: z.string().openapi({ description: "An admin UI form path (POST with CSRF)" }), field: z.string(), value: z.string() }).optional(),
      }),
    ),
  })
  .openapi("MessageStory");

export const LogQuery = Page.extend({
  domain: z.string().max(253).optional(),
  recipient: z.string().max(320).optional().openapi({ description: "Text in the recipients" }),
  sender: z.string().max(320).optional().openapi({ description: "Text in the envelope sender" }),
  verdict: z.enum(["accepted", "deferred", "rejected"]).optional(),
  since: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "a date as YYYY-MM-DD").optional(),
});

export const StatsQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(366).default(30), domain: z.string().max(253).optional() });
export const Stats = z
  .object({ days: z.array(z.string()), series: z.object(Object.fromEntries(STAT_CATEGORIES.map((c) => [c, z.array(z.number().int())])) as Record<(typeof STAT_CATEGORIES)[number], z.ZodArray<z.ZodNumber>>) })
  .openapi("Stats");

// --- lists, settings, tokens ---------------------------------------------------------------
export const DenyEntryBody = z
  .object({ value: z.string(), kind: z.string(), reason: z.string(), source: z.enum(["admin", "auto"]), created_at: iso, expires_at: isoOrNull })
  .openapi("DenyEntry");
export const AllowEntry = z.object({ value: z.string(), kind: z.string(), note: z.string(), created_at: iso }).openapi("AllowEntry");
export const DenyCreate = z
  .strictObject({ value: z.string().min(1).max(320).openapi({ description: "IP, CIDR, domain or address" }), reason: z.string().max(200).optional(), expires: z.string().max(20).optional().openapi({ description: "A duration such as 12h or 30d" }) })
  .openapi("DenyCreate");
export const AllowCreate = z.strictObject({ value: z.string().min(1).max(320), note: z.string().max(200).optional() }).openapi("AllowCreate");
export const ListValue = z.object({ value: z.string().openapi({ param: { name: "value", in: "path" }, example: "203.0.113.0%2F24" }) });

export const CatchAllNameBody = z
  .object({
    address: z.string(),
    domain: z.string(),
    name: z.string().openapi({ description: "The local part without its +tag" }),
    state: z.enum(["learning", "suggested", "refused", "allowed"]).openapi({ description: "suggested: only spam so far; refused: 550 5.1.1 at RCPT; allowed: accepted, never suggested again" }),
    spam: z.number().int(),
    good: z.number().int(),
    last_seen: iso,
    decided_at: isoOrNull,
    decided_by: z.string().nullable().openapi({ description: '"auto" (catchall.learn = apply) or the admin or token' }),
  })
  .openapi("CatchAllName");
export const CatchAllDecide = z.strictObject({ state: z.enum(["refused", "allowed"]).openapi({ description: "refused: answer 550 5.1.1 at RCPT; allowed: accept again and never suggest it again" }) }).openapi("CatchAllDecide");
export const CatchAllAddress = z.object({ address: z.string().openapi({ param: { name: "address", in: "path" }, example: "junk@example.com" }) });

export const SettingBody = z.object({ key: z.string(), value: z.string(), origin: z.string() }).openapi("Setting");
export const SettingsPatch = z
  .record(z.string().max(100), z.string().max(4096).nullable())
  .openapi("SettingsPatch", { description: 'Setting keys as in config.toml ("greylist.delay") with their new value; null or "" returns to the default' });

export const Token = z
  .object({ name: z.string(), scope: z.enum(TOKEN_SCOPES as [string, ...string[]]), created_at: iso, last_used_at: isoOrNull, revoked_at: isoOrNull })
  .openapi("Token");
export const TokenCreate = z.strictObject({ name: z.string().min(1).max(64), scope: z.enum(TOKEN_SCOPES as [string, ...string[]]) }).openapi("TokenCreate");
export const TokenName = z.object({ name: z.string().openapi({ param: { name: "name", in: "path" } }) });
