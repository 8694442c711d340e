import type { HostPort } from "../config/values.ts";
import type { CommandContext } from "./index.ts";

/** Validates the configuration (exit 2 naming the bad key) and prints each effective value with its origin. */
export function configCheck(ctx: CommandContext): number {
  const { config, effective } = ctx.config();
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: true, config_file: config.configFile, settings: effective }));
    return 0;
  }
  ctx.io.out(`configuration ok (${config.configFile ?? "no config file"})`);
  for (const { key, value, origin } of effective) ctx.io.out(`  ${key.padEnd(22)} ${format(value).padEnd(32)} ${origin}`);
  return 0;
}

function format(value: unknown): string {
  if (Array.isArray(value)) return value.map((s: HostPort) => `${s.host.includes(":") ? `[${s.host}]` : s.host}:${s.port}`).join(",");
  if (value === null) return "(none)";
  return String(value);
}
