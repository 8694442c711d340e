import { masked } from "../config/index.ts";
import type { CommandContext } from "./command.ts";
import { configAsServed } from "./context.ts";

/**
 * Validates the configuration (exit 2 naming the bad key) and prints each
 * effective value with its origin (secrets masked); with PostgreSQL it reads
 * the values the database keeps for all nodes, so it needs the database.
 */
export async function configCheck(ctx: CommandContext): Promise<number> {
  const { config, effective } = await configAsServed(ctx);
  const shown = effective.map(masked);
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: true, config_file: config.configFile, settings: shown }));
    return 0;
  }
  ctx.io.out(`configuration ok (${config.configFile ?? "no config file"})`);
  for (const e of shown) ctx.io.out(`  ${e.key.padEnd(26)} ${printable(e).padEnd(32)} ${e.origin}`);
  return 0;
}

/** A value for the terminal: empty ones named. */
export function printable(entry: { shown: string }): string {
  return entry.shown || "(none)";
}
