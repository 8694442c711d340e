// `mailferry health [--wait DURATION]`: asks the running server's /healthz at the
// configured HTTP address. The systemd unit runs it as ExecStartPost, so the
// service counts as started only once it answers; install.sh runs it too.
import { adminUrl, type Config } from "../config/index.ts";
import { positiveDuration, ValueError } from "../config/values.ts";
import type { CommandContext } from "./index.ts";
import { UsageError } from "./index.ts";

const POLL_MS = 500;

export async function healthCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.length) throw new UsageError("usage: mailferry health [--wait DURATION]");
  const waitMs = ctx.options.wait === undefined ? 0 : parseWait(ctx.options.wait);
  const url = healthUrl(ctx.config().config);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const problem = await probe(url, Math.max(1000, Math.min(5000, deadline - Date.now())));
    if (problem === null) {
      ctx.io.out(`ok: ${url}`);
      return 0;
    }
    if (Date.now() + POLL_MS > deadline) {
      ctx.io.err(`mailferry: not healthy: ${url}: ${problem}${waitMs ? ` (waited ${ctx.options.wait})` : ""}`);
      return 1;
    }
    await Bun.sleep(POLL_MS);
  }
}

function parseWait(raw: string): number {
  try {
    return positiveDuration(raw);
  } catch (err) {
    if (err instanceof ValueError) throw new UsageError(`--wait ${JSON.stringify(raw)}: ${err.message}`);
    throw err;
  }
}

/** /healthz on the admin port; a wildcard listen address is asked on loopback. */
export function healthUrl(config: Pick<Config, "http">): string {
  const host = config.http.host === "0.0.0.0" ? "127.0.0.1" : config.http.host === "::" ? "::1" : config.http.host;
  return `${adminUrl({ http: { ...config.http, host } })}healthz`;
}

/** What /healthz answers (fields absent when something else answers the port). */
export interface HealthBody {
  status?: unknown;
  version?: unknown;
  db?: { ok?: boolean };
  smtp?: { listening?: boolean; port?: unknown };
}

/** Asks /healthz; throws when nothing answers in time. The body is null when it is not JSON. */
export async function readHealth(url: string, timeoutMs: number): Promise<{ status: number; ok: boolean; body: HealthBody | null }> {
  // Our own port on this machine: with http.tls its certificate names the host name, not the address asked here.
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), tls: { rejectUnauthorized: false } });
  const body = (await res.json().catch(() => null)) as HealthBody | null;
  return { status: res.status, ok: res.ok, body };
}

/** null when healthy, else what is wrong. */
async function probe(url: string, timeoutMs: number): Promise<string | null> {
  try {
    const { status, ok, body } = await readHealth(url, timeoutMs);
    if (ok && body?.status === "ok") return null;
    return `HTTP ${status}, status ${body?.status ?? "unknown"} (database ${body?.db?.ok ? "ok" : "down"}, SMTP ${body?.smtp?.listening ? "listening" : "not listening"})`;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === "ECONNREFUSED" ? "nothing answers (connection refused)" : (err as Error).message;
  }
}
