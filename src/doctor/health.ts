// Asking the running server's /healthz on this machine: `mailferry health`
// waits on it, the doctor reports what it answers.
import { adminUrl, type Config } from "../config/index.ts";

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
