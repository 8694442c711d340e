import type { CommandContext } from "./index.ts";

/** Validates the configuration (exit 2 naming the bad key) and prints each effective value with its origin. */
export function configCheck(ctx: CommandContext): number {
  const { config, effective } = ctx.config();
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: true, config_file: config.configFile, settings: effective }));
    return 0;
  }
  ctx.io.out(`configuration ok (${config.configFile ?? "no config file"})`);
  for (const { key, shown, origin } of effective) ctx.io.out(`  ${key.padEnd(26)} ${printable(key, shown).padEnd(32)} ${origin}`);
  return 0;
}

/** A setting's value for the terminal: passwords hidden, empty ones named. */
export function printable(key: string, shown: string): string {
  return key.endsWith("password") && shown ? "••••••" : shown || "(none)";
}
