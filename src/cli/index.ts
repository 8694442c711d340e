// `mailferry <command>`: the same entry for `npm run mailferry --`, `npm start`
// and the compiled binary. Exit codes: 0 ok, 1 runtime error, 2 usage or
// configuration error.
import { parseArgs } from "node:util";
import { ConfigError, flagName, loadConfigWithOrigins, SETTINGS } from "../config/index.ts";
import { UserError } from "../errors.ts";
import { aliasCommand } from "./alias.ts";
import { alertsCommand } from "./alerts.ts";
import { adminCommand } from "./admin.ts";
import { allowCommand } from "./allow.ts";
import { denyCommand } from "./deny.ts";
import { addressCommand } from "./address.ts";
import { backupCommand, restoreCommand } from "./backup.ts";
import { doctorCommand } from "./doctor.ts";
import { configCheck } from "./config-check.ts";
import { configSet } from "./config-set.ts";
import { configReference } from "./config-reference.ts";
import { destinationCommand } from "./destination.ts";
import { dnsCommand } from "./dns.ts";
import { domainCommand } from "./domain.ts";
import { healthCommand } from "./health.ts";
import { logCommand, statsCommand } from "./log.ts";
import { serve } from "./serve.ts";
import { tokenCommand } from "./token.ts";
import { queueCommand } from "./queue.ts";
import { passwordCommand } from "./password.ts";
import { nodeCommand } from "./node.ts";
import { VERSION } from "../version.ts";
import { type CommandContext, type Io, UsageError } from "./command.ts";

const USAGE = `usage: mailferry <command> [options]

commands:
  serve                     run the MX listener, forwarding engine and admin HTTP server
  version                   print the version
  health [--wait DURATION]  ask the running server's /healthz (exit 0 healthy, 1 not);
                            --wait keeps asking until it is healthy or the time is up
  domain add <name> [--selector S]
                            manage a domain (receive mail for it); makes its DKIM key
  domain dns <name> [--check] [--json]
                            the DNS records to publish, as zone-file lines; --check is
                            dns check <name>
  domain dkim <name>        its DKIM keys: pending, signing or retired
  domain dkim-rotate <name> [selector] [--activate]
                            a new key, pending: it signs once DNS serves its record (dns check,
                            or the server every 10 minutes); --activate switches to it now
  domain dkim-remove <name> <selector> [--force]
                            stop publishing a key; a retired one only a week after the switch
  domain webhook-key <name> [--rotate]
                            the key that signs its webhook requests (X-Webhook-Signature)
  domain list [--json]      list managed domains
  domain remove <name>      stop managing a domain (its aliases are removed)
  domain set <name> key=value...
                            catch_all=on|off  max_targets=N  delivery_port=N|default
                            accept_subdomains=on|off|default  random_subdomain=on|off|default
                            random_subdomain_length=1..63  scan_spam=on|off
  alias add <domain> <name> [recipient...] [--disabled drop|soft|hard] [--description TEXT]
                            name: a local part, * (catch-all) or /regex/ (/regex/g)
                            recipient: an address, a domain name or an http(s) URL
  alias list [<domain>] [--json]
  alias remove <domain> <name>
  alias test <address> [--json]   what would happen to mail for <address>
  alias import <domain> <file> [--apply] [--replace]
                            Forward Email TXT syntax, one value per line; dry run without --apply
  alias export <domain>     the domain's rules in TXT syntax
  alias vacation <domain> <name> --subject S --message M [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--off]
                            auto-reply of an exact alias (--off keeps the text, stops replying)
  address create <domain> <target...> [--name N] [--subdomain S] [--random-subdomain | --no-random-subdomain] [--description TEXT]
                            a new address (an exact alias), e.g. name@x7k2p9q1.<domain>; random name without --name
  allow add <ip|cidr|domain|address> [--description TEXT]
  allow list [--json]       senders exempt from greylisting, rate limits and SPF/DMARC refusal
  allow remove <entry>
  deny add <ip|cidr|domain|address> [--reason TEXT] [--expires 30d]
  deny list [--json]        senders answered 421 (automatic entries expire by themselves)
  deny remove <entry>
  destination add <address> forward to an address outside the managed domains once it confirms
                            the verification mail (queued; the running server sends it)
  destination list [--json] destinations and whether each is verified
  destination resend <address>
  destination remove <address>
  token create --name N --scope read|write|admin
                            an API token, printed once on the last line
  token list [--json]
  token revoke <name>
  queue list [--json]       the outbound queue (sent mail, DSNs, notices) with each recipient's state
  queue retry <id>          make a queued message due now (the running server sends it within a minute)
  queue delete <id>         remove a queued message unsent (no DSN)
  password create <address|domain> --name N
                            an app password to send as the address (or any address of the
                            domain) through the submission port, printed once on the last line
  password list [--json]    app passwords (never their secret) with their last use
  password revoke <id>
  node list [--json]        the nodes (mailferry serve) on this database: hostname, last seen,
                            alive (seen within a minute); each is an MX host of the domains
  node forget <hostname>    remove a decommissioned node (stop it first): its MX and MTA-STS
                            lines go from the records and the policy
  log [--domain D] [--recipient R] [--sender S] [--verdict accepted|deferred|rejected] [--since YYYY-MM-DD] [--limit N] [--json]
                            the mail log, newest first (default 50 events)
  log show <id> [--json]    the story of the event's message in words: client, authentication,
                            rule, choices, each destination's answer, the answer to the sender
  stats [--days N] [--domain D] [--json]
                            counts per day (UTC) and category (default 30 days)
  alerts list [--json]      alerts raised by the server (destinations deferring or refusing
                            copies): lasting ones first, then resolved ones
  dns check [<domain>] [--json]
                            each needed record (the domain's, or every managed one's, and
                            this server's address and PTR) looked up in DNS now: ✓, ✗
                            (required) or ! (recommended) with the line to publish; exit 1
                            unless every required record is right
  backup <dir>              an online snapshot of the data dir (database, keys, certificates,
                            config) with manifest.json; safe while the server runs
  restore <dir>             check a backup, then swap it into the data dir (refused while a
                            server runs on it); the old contents go to <data>/backups/
  doctor [--json]           check ports, outbound port 25, DNS, clock, data dir, database,
                            certificate and disk space: ✓, ! (warning) or ✗ (error) with the
                            fix; exit 1 on any error
  admin create <name>       create an admin (password on stdin, 12+ characters)
  admin setup-url           the one-time set-up URL, while no admin exists (after the server started once)
  config check [--json]     validate configuration and print the effective values
  config set key=value...   write settings to config.toml (keys as config check lists them; key= resets)
  config reference          every setting as the markdown of docs/configuration.md (npm run docs writes it)

global options (each also settable as MAILFERRY_<NAME> or in config.toml):
  --data-dir DIR            data directory (default ./data)
  --config FILE             configuration file (default <data-dir>/config.toml)
${SETTINGS.map((s) => `  --${flagName(s)} VALUE`).join("\n")}
  --json                    machine-readable output where listing
  -h, --help                this help`;

/** Options of the commands (the global ones are the settings, --data-dir and --config). */
const COMMAND_OPTIONS = {
  disabled: { type: "string" },
  description: { type: "string" },
  selector: { type: "string" },
  reason: { type: "string" },
  expires: { type: "string" },
  subject: { type: "string" },
  message: { type: "string" },
  start: { type: "string" },
  end: { type: "string" },
  name: { type: "string" },
  scope: { type: "string" },
  subdomain: { type: "string" },
  domain: { type: "string" },
  recipient: { type: "string" },
  sender: { type: "string" },
  verdict: { type: "string" },
  since: { type: "string" },
  limit: { type: "string" },
  days: { type: "string" },
  wait: { type: "string" },
  off: { type: "boolean" },
  apply: { type: "boolean" },
  replace: { type: "boolean" },
  rotate: { type: "boolean" },
  check: { type: "boolean" },
  activate: { type: "boolean" },
  force: { type: "boolean" },
  "random-subdomain": { type: "boolean" },
  "no-random-subdomain": { type: "boolean" },
} as const;

/** The options with a value, for CommandContext.options. */
const COMMAND_VALUES = (Object.keys(COMMAND_OPTIONS) as (keyof typeof COMMAND_OPTIONS)[]).filter((k) => COMMAND_OPTIONS[k].type === "string");

/** Commands that need only the parsed context. */
const COMMANDS: Record<string, (ctx: CommandContext) => Promise<number> | number> = {
  serve,
  domain: domainCommand,
  dns: dnsCommand,
  alias: aliasCommand,
  allow: allowCommand,
  deny: denyCommand,
  destination: destinationCommand,
  address: addressCommand,
  token: tokenCommand,
  queue: queueCommand,
  password: passwordCommand,
  node: nodeCommand,
  log: logCommand,
  stats: statsCommand,
  alerts: alertsCommand,
  health: healthCommand,
  backup: backupCommand,
  restore: restoreCommand,
  doctor: doctorCommand,
  config: (ctx) => {
    const sub = ctx.args[0];
    if (sub === "check") return configCheck(ctx);
    if (sub === "set") return configSet(ctx);
    if (sub === "reference") return configReference(ctx);
    throw new UsageError(`unknown config command: ${sub ?? "(none)"}; try: config check, config set, config reference`);
  },
};

export async function runCli(argv: string[], io: Io): Promise<number> {
  try {
    const settingFlags = Object.fromEntries(SETTINGS.map((s) => [flagName(s), { type: "string" as const }]));
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ...settingFlags,
        "data-dir": { type: "string" },
        config: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        ...COMMAND_OPTIONS,
      },
    });
    const [command, ...args] = positionals;
    if (values.help || !command) {
      io.out(USAGE);
      return command || values.help ? 0 : 2;
    }
    const flags = Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === "string")) as Record<string, string>;
    const ctx: CommandContext = {
      io,
      args,
      json: !!values.json,
      options: Object.fromEntries(COMMAND_VALUES.map((k) => [k, values[k] as string | undefined])),
      flags: new Set(Object.entries(values).filter(([, v]) => v === true).map(([k]) => k)),
      config: () => loadConfigWithOrigins({ env: io.env, flags, cwd: io.cwd }),
      configInput: { env: io.env, flags, cwd: io.cwd },
    };
    if (command === "version") {
      io.out(`mailferry ${VERSION} (bun ${Bun.version})`);
      return 0;
    }
    if (command === "admin") return await adminCommand(ctx, io.stdin ?? (async () => ""));
    const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!handler) throw new UsageError(`unknown command: ${command}`);
    return await handler(ctx);
  } catch (err) {
    return reportError(err, io);
  }
}

function reportError(err: unknown, io: Io): number {
  if (err instanceof UsageError || (err instanceof TypeError && (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))) {
    io.err(`mailferry: ${(err as Error).message}\n(run \`mailferry --help\` for usage)`);
    return 2;
  }
  if (err instanceof ConfigError) {
    io.err(`mailferry: ${err.message}`);
    return 2;
  }
  if (err instanceof UserError) {
    io.err(`mailferry: ${err.message}`);
    return err.kind === "invalid" ? 2 : 1;
  }
  io.err(`mailferry: ${err instanceof Error ? err.message : String(err)}`);
  return 1;
}
