// Settings changed while mailferry runs (settings page, API, `config set`): one
// function validates them, writes config.toml, audits the change (the audit log
// redacts secrets itself) and applies the settings declared `live` to the
// running server (src/config/index.ts).
import { applyLiveSettings, type Config, ConfigError, type ConfigInput, envName, findSetting, loadConfigWithOrigins, masked, tomlName } from "../config/index.ts";
import { writeSettings } from "../config/write.ts";
import { UserError } from "../errors.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";

/** Setting keys as `config check` lists them ("greylist.delay") with their new value; null or "" returns to the default. */
export type SettingChanges = Record<string, string | null>;

export function settingsService(deps: { db: DB; config: Config; configInput: ConfigInput }) {
  return {
    /** Every effective value (secrets masked) and where it comes from, and the file changes are written to. */
    list() {
      const { config, effective } = loadConfigWithOrigins(deps.configInput);
      return { configFile: config.configFile ?? `${config.dataDir}/config.toml`, effective: effective.map(masked) };
    },
    /**
     * Validates the whole configuration with the changes and writes nothing when
     * a value is bad (a UserError naming the setting); else writes config.toml,
     * audits, and applies the live settings. Returns the new configuration.
     */
    async update(actor: Actor, changes: SettingChanges): Promise<Config> {
      const unknown = Object.keys(changes).find((key) => !findSetting(key));
      if (unknown) throw new UserError("invalid", `unknown setting ${unknown}`, unknown);
      const values = Object.fromEntries(Object.entries(changes).map(([key, value]) => [key, value ?? ""]));
      let written: ReturnType<typeof writeSettings>;
      try {
        written = writeSettings(deps.configInput, values);
      } catch (err) {
        throw err instanceof ConfigError ? new UserError("invalid", err.message.replace(/^invalid configuration: /, ""), changedKeyNamed(err.source, Object.keys(changes))) : err;
      }
      applyLiveSettings(deps.config, written.after);
      await audit(deps.db, actor, "settings.update", "config.toml", written.before, changes);
      return written.after;
    },
  };
}

/** Which of the changed keys an error's source names (`[log] retention in …/config.toml`, or an environment name). */
function changedKeyNamed(source: string, keys: string[]): string | undefined {
  return keys.find((key) => {
    const setting = findSetting(key)!;
    return source.startsWith(`${tomlName(setting)} in `) || source === envName(setting);
  });
}
