// Settings changed in the UI, the API or `mailferry config set` are written to
// config.toml (after validating the whole configuration with them) so they survive a restart.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { type Config, ConfigError, type ConfigInput, loadConfigWithOrigins } from "./index.ts";

/**
 * Sets `section.key` (or a top-level key) to each value; "" removes the key
 * (back to the default). Returns the configuration before and after; throws
 * a ConfigError naming the bad value and writes nothing when invalid.
 */
export function writeSettings(input: ConfigInput, changes: Record<string, string>): { before: Record<string, unknown>; after: Config } {
  const { config } = loadConfigWithOrigins(input);
  const path = config.configFile ?? `${config.dataDir}/config.toml`;
  const data = existsSync(path) ? (Bun.TOML.parse(readFileSync(path, "utf8")) as Record<string, Record<string, unknown> | unknown>) : {};
  const before = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
  for (const [dotted, value] of Object.entries(changes)) {
    const [section, key] = dotted.includes(".") ? (dotted.split(".") as [string, string]) : ["", dotted];
    const holder = section ? ((data[section] ??= {}) as Record<string, unknown>) : (data as Record<string, unknown>);
    if (value.trim() === "") delete holder[key];
    else holder[key] = value.trim();
    if (section && Object.keys(holder).length === 0) delete data[section];
  }
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, toToml(data), { mode: 0o640 });
  try {
    const after = loadConfigWithOrigins({ ...input, flags: { ...input.flags, config: tmp } }).config;
    renameSync(tmp, path);
    return { before, after: { ...after, configFile: path } };
  } catch (err) {
    rmSync(tmp, { force: true });
    // The check read the draft; the admin knows the file it replaces.
    if (err instanceof ConfigError) throw new ConfigError(err.source.replaceAll(tmp, path), err.message.replace(/^invalid configuration: /, "").replaceAll(tmp, path));
    throw err;
  }
}

/** TOML for mailferry's shape: top-level scalars, then one table per section. */
export function toToml(data: Record<string, unknown>): string {
  const scalar = (v: unknown): string => (Array.isArray(v) ? `[${v.map(scalar).join(", ")}]` : typeof v === "string" ? JSON.stringify(v) : String(v));
  const top = Object.entries(data).filter(([, v]) => typeof v !== "object" || Array.isArray(v));
  const tables = Object.entries(data).filter(([, v]) => typeof v === "object" && v !== null && !Array.isArray(v)) as [string, Record<string, unknown>][];
  const lines = ["# Written by mailferry (settings page, API or config set); comments are not kept.", ...top.map(([k, v]) => `${k} = ${scalar(v)}`)];
  for (const [section, values] of tables) lines.push("", `[${section}]`, ...Object.entries(values).map(([k, v]) => `${k} = ${scalar(v)}`));
  return lines.join("\n") + "\n";
}
