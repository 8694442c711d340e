// One structured line per event: JSON for machines (journald, log shippers),
// or a compact human form on a terminal.
import type { LogFormat, LogLevel } from "./config/index.ts";

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  warn(event: string, fields?: Fields): void;
  error(event: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line, e.g. the SMTP session id. */
  child(fields: Fields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  write?: (line: string) => void;
  isTTY?: boolean;
}

export function createLogger({ level, format, write, isTTY = !!process.stdout.isTTY }: LoggerOptions, base: Fields = {}): Logger {
  const out = write ?? ((line: string) => process.stdout.write(line + "\n"));
  const human = format === "text" || (format === "auto" && isTTY);
  const emit = (lvl: Exclude<LogLevel, "silent">, event: string, fields: Fields = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    const record = { time: new Date().toISOString(), level: lvl, event, ...base, ...fields };
    out(human ? formatHuman(record) : JSON.stringify(record, jsonSafe));
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    child: (fields) => createLogger({ level, format, write: out, isTTY }, { ...base, ...fields }),
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { message: value.message, code: (value as { code?: unknown }).code, stack: value.stack };
  if (typeof value === "bigint") return value.toString();
  return value;
}

function formatHuman({ time, level, event, ...rest }: Fields & { time: string; level: string; event: string }): string {
  const fields = Object.entries(rest)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === "string" && !/\s/.test(value) ? value : JSON.stringify(value, jsonSafe)}`);
  return [time.slice(11, 23), level.toUpperCase().padEnd(5), event, ...fields].join(" ");
}
