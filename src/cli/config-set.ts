import { type Effective, loadConfigWithOrigins, SETTINGS } from "../config/index.ts";
import { writeSettings } from "../config/write.ts";
import { printable } from "./config-check.ts";
import { CLI_ACTOR, withServices } from "./context.ts";
import type { CommandContext } from "./index.ts";
import { UsageError } from "./index.ts";

const KEYS = new Set(SETTINGS.map((s) => [s.section, s.key].filter(Boolean).join(".")));

/**
 * `config set key=value...`: written to config.toml after validating the whole
 * configuration with them ("key=" returns to the default); a bad value writes nothing.
 */
export async function configSet(ctx: CommandContext): Promise<number> {
  const [, ...words] = ctx.args;
  if (!words.length) throw new UsageError("usage: mailferry config set key=value... (keys as config check lists them, e.g. greylist.delay=2m)");
  const changes = parseChanges(words);
  const before = loadConfigWithOrigins(ctx.configInput).effective;
  await withServices(ctx, async (s) => {
    const { before: file } = writeSettings(ctx.configInput, changes);
    await s.audit(CLI_ACTOR, "settings.update", "config.toml", file, changes);
  });
  const after = loadConfigWithOrigins(ctx.configInput).effective;
  for (const key of Object.keys(changes)) ctx.io.out(describeChange(key, before, after));
  ctx.io.out("a running mailferry serve uses the new values after a restart");
  return 0;
}

function parseChanges(words: string[]): Record<string, string> {
  const changes: Record<string, string> = {};
  for (const word of words) {
    const at = word.indexOf("=");
    if (at < 1) throw new UsageError(`expected key=value, got "${word}"`);
    const key = word.slice(0, at);
    if (!KEYS.has(key)) throw new UsageError(`unknown setting: ${key} (config check lists them)`);
    changes[key] = word.slice(at + 1);
  }
  return changes;
}

/** `key: old -> new`, and whether the environment or a flag still wins over the file. */
function describeChange(key: string, before: Effective, after: Effective): string {
  const was = before.find((e) => e.key === key)!;
  const now = after.find((e) => e.key === key)!;
  const change = was.shown === now.shown ? `${printable(key, now.shown)} (unchanged)` : `${printable(key, was.shown)} -> ${printable(key, now.shown)}`;
  const overridden = now.origin.startsWith("--") || now.origin.startsWith("MAILFERRY_");
  return `${key}: ${change}${overridden ? `; ${now.origin} overrides config.toml` : ""}`;
}
