// `mailferry <command>`: the same entry for `npm run mailferry --`, `npm start`
// and the compiled binary. Exit codes: 0 ok, 1 runtime error, 2 usage or
// configuration error.
import { parseArgs } from "node:util";
import { ConfigError, type Config, type ConfigInput, flagName, type Effective, loadConfigWithOrigins, SETTINGS } from "../config/index.ts";
import { UserError } from "../errors.ts";
import { aliasCommand } from "./alias.ts";
import { adminCommand } from "./admin.ts";
import { allowCommand } from "./allow.ts";
import { denyCommand } from "./deny.ts";
import { configCheck } from "./config-check.ts";
import { domainCommand } from "./domain.ts";
import { serve } from "./serve.ts";
import { VERSION } from "../version.ts";

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Standard input, read whole (the admin password). */
  stdin?: () => Promise<string>;
  env: Record<string, string | undefined>;
  cwd: string;
}

export class UsageError extends Error {}

export interface CommandContext {
  io: Io;
  args: string[];
  json: boolean;
  /** Command options with a value, e.g. `--disabled hard`. */
  options: Record<string, string | undefined>;
  /** Command switches that were given, e.g. `apply` for `--apply`. */
  flags: Set<string>;
  /** Loads configuration from defaults, config.toml, environment and the global flags. */
  config(): { config: Config; effective: Effective };
  /** What config() loads from, for parts that reload it. */
  configInput: ConfigInput;
}

const USAGE = `usage: mailferry <command> [options]

commands:
  serve                     run the MX listener, forwarding engine and admin HTTP server
  version                   print the version
  domain add <name> [--selector S]
                            manage a domain (receive mail for it); makes its DKIM key
  domain dns <name> [--json]
                            the DNS records to publish, as zone-file lines
  domain dkim <name>        its DKIM keys; dkim-rotate <name> [selector], dkim-remove <name> <selector>
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
  allow add <ip|cidr|domain|address> [--description TEXT]
  allow list [--json]       senders exempt from greylisting, rate limits and SPF/DMARC refusal
  allow remove <entry>
  deny add <ip|cidr|domain|address> [--reason TEXT] [--expires 30d]
  deny list [--json]        senders answered 421 (automatic entries expire by themselves)
  deny remove <entry>
  config check [--json]     validate configuration and print the effective values

global options (each also settable as MAILFERRY_<NAME> or in config.toml):
  --data-dir DIR            data directory (default ./data)
  --config FILE             configuration file (default <data-dir>/config.toml)
${SETTINGS.map((s) => `  --${flagName(s)} VALUE`).join("\n")}
  --json                    machine-readable output where listing
  -h, --help                this help`;

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
        disabled: { type: "string" },
        description: { type: "string" },
        selector: { type: "string" },
        reason: { type: "string" },
        expires: { type: "string" },
        subject: { type: "string" },
        message: { type: "string" },
        start: { type: "string" },
        end: { type: "string" },
        off: { type: "boolean" },
        apply: { type: "boolean" },
        replace: { type: "boolean" },
        rotate: { type: "boolean" },
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
      options: Object.fromEntries(["disabled", "description", "selector", "reason", "expires", "subject", "message", "start", "end"].map((k) => [k, values[k as keyof typeof values] as string | undefined])),
      flags: new Set(Object.entries(values).filter(([, v]) => v === true).map(([k]) => k)),
      config: () => loadConfigWithOrigins({ env: io.env, flags, cwd: io.cwd }),
      configInput: { env: io.env, flags, cwd: io.cwd },
    };
    switch (command) {
      case "serve":
        return await serve(ctx);
      case "version":
        io.out(`mailferry ${VERSION} (bun ${Bun.version})`);
        return 0;
      case "domain":
        return await domainCommand(ctx);
      case "alias":
        return await aliasCommand(ctx);
      case "allow":
        return await allowCommand(ctx);
      case "deny":
        return await denyCommand(ctx);
      case "admin":
        return await adminCommand(ctx, io.stdin ?? (async () => ""));
      case "config":
        if (args[0] !== "check") throw new UsageError(`unknown config command: ${args[0] ?? "(none)"}; try: config check`);
        return configCheck(ctx);
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
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
