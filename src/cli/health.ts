// `mailferry health [--wait DURATION]`: asks the running server's /healthz at the
// configured HTTP address. The systemd unit runs it as ExecStartPost, so the
// service counts as started only once it answers; install.sh runs it too.
import { positiveDuration, ValueError } from "../config/values.ts";
import { healthUrl, readHealth } from "../doctor/health.ts";
import { type CommandContext, UsageError } from "./command.ts";

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
