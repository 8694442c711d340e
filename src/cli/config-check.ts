import type { CommandContext } from "./index.ts";

/** Validates the configuration (exit 2 naming the bad key) and prints each effective value with its origin. */
export function configCheck(ctx: CommandContext): number {
  const { config, effective } = ctx.config();
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: true, config_file: config.configFile, settings: effective }));
    return 0;
  }
  ctx.io.out(`configuration ok (${config.configFile ?? "no config file"})`);
  for (const { key, shown, origin } of effective) ctx.io.out(`  ${key.padEnd(26)} ${(key.endsWith("password") && shown ? "••••••" : shown || "(none)").padEnd(32)} ${origin}`);
  return 0;
}
