// What every command shares with the dispatcher in index.ts: the context it
// runs in, its input and output, and the error that means "wrong usage" (exit 2).
import type { Config, ConfigInput, Effective } from "../config/index.ts";

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
