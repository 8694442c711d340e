// Settings changed while mailferry runs (settings page, API, `config set`): one
// function validates them, writes them where they are kept, audits the change
// (the audit log redacts secrets itself) and applies the settings declared
// `live` to the running server (src/config/index.ts). With one SQLite server
// they go to config.toml; with PostgreSQL every setting not declared `node` goes
// to the database, shared by all nodes, which poll for it (followSharedSettings).
import { applyLiveSettings, type Config, ConfigError, type ConfigInput, envName, findSetting, loadConfig, loadConfigWithOrigins, masked, tomlName } from "../config/index.ts";
import { writeSettings } from "../config/write.ts";
import { UserError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { versionCounter } from "../store/settings.ts";
import { readSharedSettings, writeSharedSettings } from "../store/shared-settings.ts";

/** Setting keys as `config check` lists them ("greylist.delay") with their new value; null or "" returns to the default. */
export type SettingChanges = Record<string, string | null>;

/** Whether settings changed at run time are kept in the database (PostgreSQL: several nodes share it) rather than config.toml. */
export const sharesSettings = (config: Pick<Config, "database">): boolean => config.database.url !== null;

/** The configuration input with the database's shared values, when this mode keeps any. */
export async function withSharedSettings(db: DB, config: Pick<Config, "database">, input: ConfigInput): Promise<ConfigInput> {
  return sharesSettings(config) ? { ...input, shared: await readSharedSettings(db) } : input;
}

export function settingsService(deps: { db: DB; config: Config; configInput: ConfigInput }) {
  const shared = sharesSettings(deps.config);
  return {
    /** Every effective value (secrets masked) and where it comes from; the file node-local changes are written to, and whether the rest go to the database. */
    async list() {
      const { config, effective } = loadConfigWithOrigins(await withSharedSettings(deps.db, deps.config, deps.configInput));
      return { configFile: config.configFile ?? `${config.dataDir}/config.toml`, sharedInDatabase: shared, effective: effective.map(masked) };
    },
    /**
     * Validates the whole configuration with the changes and writes nothing when
     * a value is bad (a UserError naming the setting); else writes them (config.toml,
     * or the database for shared ones), audits, and applies the live settings.
     * Returns the new configuration.
     */
    async update(actor: Actor, changes: SettingChanges): Promise<Config> {
      const unknown = Object.keys(changes).find((key) => !findSetting(key));
      if (unknown) throw new UserError("invalid", `unknown setting ${unknown}`, unknown);
      const values = Object.fromEntries(Object.entries(changes).map(([key, value]) => [key, (value ?? "").trim()]));
      const toDatabase = shared ? Object.fromEntries(Object.entries(values).filter(([key]) => !findSetting(key)!.node)) : {};
      const toFile = Object.fromEntries(Object.entries(values).filter(([key]) => !(key in toDatabase)));
      const stored = shared ? await readSharedSettings(deps.db) : {};
      const input = { ...deps.configInput, ...(shared ? { shared: withChanges(stored, toDatabase) } : {}) };
      let written: ReturnType<typeof writeSettings> | null = null;
      let after: Config;
      try {
        // Node-local changes (all of them with SQLite) go to config.toml; either way the whole configuration is validated with every change.
        if (Object.keys(toFile).length > 0) written = writeSettings(input, toFile);
        after = written?.after ?? loadConfig(input);
      } catch (err) {
        throw err instanceof ConfigError ? new UserError("invalid", err.message.replace(/^invalid configuration: /, ""), changedKeyNamed(err.source, Object.keys(changes))) : err;
      }
      if (written) await audit(deps.db, actor, "settings.update", "config.toml", written.before, pick(changes, Object.keys(toFile)));
      if (Object.keys(toDatabase).length > 0) {
        await writeSharedSettings(deps.db, toDatabase);
        await audit(deps.db, actor, "settings.update", "database", pick(stored, Object.keys(toDatabase)), pick(changes, Object.keys(toDatabase)));
      }
      applyLiveSettings(deps.config, after);
      return after;
    },
  };
}

function withChanges(stored: Record<string, string>, changes: Record<string, string>): Record<string, string> {
  const next = { ...stored, ...changes };
  for (const [key, value] of Object.entries(changes)) if (value === "") delete next[key];
  return next;
}

function pick<T>(values: Record<string, T>, keys: string[]): Record<string, T | null> {
  return Object.fromEntries(keys.map((key) => [key, values[key] ?? null]));
}

/** Which of the changed keys an error's source names (`[log] retention in …/config.toml`, the database, or an environment name). */
function changedKeyNamed(source: string, keys: string[]): string | undefined {
  return keys.find((key) => {
    const setting = findSetting(key)!;
    return source.startsWith(`${tomlName(setting)} in `) || source === envName(setting);
  });
}

/**
 * With PostgreSQL: at start, every value the database keeps applies (before any
 * part reads the configuration); then what another node or a CLI command
 * changes: the follower polls the version counter the triggers on
 * shared_settings bump, and on a move reloads the configuration with the
 * database's values and applies the live ones (the rest wait for a restart, as
 * on the node that made the change).
 */
export async function followSharedSettings(deps: { db: DB; config: Config; configInput: ConfigInput; logger: Logger; intervalMs?: number }): Promise<{ stop(): Promise<void> }> {
  const reload = async () => loadConfig(await withSharedSettings(deps.db, deps.config, deps.configInput));
  let seen = await versionCounter(deps.db, "shared_settings_version");
  Object.assign(deps.config, await reload());
  const check = async () => {
    const version = await versionCounter(deps.db, "shared_settings_version");
    if (version === seen) return;
    let next: Config;
    try {
      next = await reload();
    } catch (err) {
      // A value that does not go with this node's own settings waits for the next change; a database error is retried.
      if (err instanceof ConfigError) seen = version;
      throw err;
    }
    applyLiveSettings(deps.config, next);
    seen = version;
    deps.logger.info("settings.shared_applied", { version });
  };
  let busy: Promise<void> | null = null;
  const timer = setInterval(() => {
    busy ??= check()
      .catch((err) => deps.logger.warn("settings.shared_not_applied", { error: err }))
      .finally(() => (busy = null));
  }, deps.intervalMs ?? 1_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await busy;
    },
  };
}
