import { type Effective, findSetting, masked, SHARED_ORIGIN } from "../config/index.ts";
import { sharesSettings } from "../service/settings.ts";
import { printable } from "./config-check.ts";
import { CLI_ACTOR, configAsServed, withServices } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

/**
 * `config set key=value...`: written to config.toml after validating the whole
 * configuration with them ("key=" returns to the default); a bad value writes
 * nothing. With PostgreSQL, all but node-local settings go to the database,
 * where every running node picks them up.
 */
export async function configSet(ctx: CommandContext): Promise<number> {
  const [, ...words] = ctx.args;
  if (!words.length) throw new UsageError("usage: mailferry config set key=value... (keys as config check lists them, e.g. greylist.delay=2m)");
  const changes = parseChanges(words);
  const before = (await configAsServed(ctx)).effective;
  await withServices(ctx, (s) => s.settings.update(CLI_ACTOR, changes));
  const { config, effective: after } = await configAsServed(ctx);
  for (const key of Object.keys(changes)) ctx.io.out(describeChange(key, before, after, sharesSettings(config) && !findSetting(key)!.node ? SHARED_ORIGIN : "config.toml"));
  // This process's configuration is not the running server's: with config.toml nothing applies to it before a restart.
  ctx.io.out(
    sharesSettings(config)
      ? "running nodes apply the shared live settings within seconds, the rest after a restart; node-local ones (config.toml) after this node's restart"
      : "a running mailferry serve uses the new values after a restart",
  );
  return 0;
}

function parseChanges(words: string[]): Record<string, string> {
  const changes: Record<string, string> = {};
  for (const word of words) {
    const at = word.indexOf("=");
    if (at < 1) throw new UsageError(`expected key=value, got "${word}"`);
    const key = word.slice(0, at);
    if (!findSetting(key)) throw new UsageError(`unknown setting: ${key} (config check lists them)`);
    changes[key] = word.slice(at + 1);
  }
  return changes;
}

/** `key: old -> new`, and whether the environment or a flag still wins over where it was kept (config.toml or the database). */
function describeChange(key: string, before: Effective, after: Effective, keptIn: string): string {
  const was = before.find((e) => e.key === key)!;
  const now = after.find((e) => e.key === key)!;
  const change = was.shown === now.shown ? `${printable(masked(now))} (unchanged)` : `${printable(masked(was))} -> ${printable(masked(now))}`;
  const overridden = now.origin.startsWith("--") || now.origin.startsWith("MAILFERRY_");
  return `${key}: ${change}${overridden ? `; ${now.origin} overrides ${keptIn}` : ""}`;
}
