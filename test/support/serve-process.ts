// `mailferry serve` as a child process, for tests that measure its memory or
// kill it with SIGKILL (a crash, not a shutdown) and start it again on the
// same data directory.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE, type DB, openStore } from "../../src/store/db.ts";
import { CLI, cleanEnv, run } from "./smoke.ts";

export interface ServeProcess {
  proc: ReturnType<typeof Bun.spawn>;
  smtpPort: number;
  /** The admin URL without the trailing slash. */
  httpUrl: string;
  /** Log lines at level error. */
  errors: string[];
  /** Peak resident memory of the process so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

/** `onLine` sees every JSON log line (a test's own report). */
export async function startServe(env: Record<string, string>, onLine: (line: Record<string, unknown>) => void = () => {}): Promise<ServeProcess> {
  const proc = Bun.spawn([...CLI, "serve"], { env: { ...cleanEnv(), MAILFERRY_LOG_FORMAT: "json", ...env }, stdout: "pipe", stderr: "ignore" });
  const errors: string[] = [];
  const ready = readyLine(proc.stdout, errors, onLine);
  const line = await Promise.race([ready, Bun.sleep(20_000).then(() => null)]);
  if (!line) {
    proc.kill("SIGKILL");
    throw new Error("mailferry serve was not ready in 20 s");
  }
  return {
    proc,
    smtpPort: Number(String(line.smtp).split(":").pop()),
    httpUrl: String(line.admin_url).replace(/\/$/, ""),
    errors,
    peakRssMb: () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))?.[1] ?? 0) / 1024,
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** Reads the JSON log to the end (so the pipe never fills); resolves with the ready line. */
function readyLine(stream: ReadableStream<Uint8Array>, errors: string[], onLine: (line: Record<string, unknown>) => void): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    void (async () => {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
        rest = lines.pop()!;
        for (const text of lines) {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (line.event === "mailferry.ready") resolve(line);
          if (line.level === "error") errors.push(`${line.event}: ${JSON.stringify(line.error).slice(0, 300)}`);
          onLine(line);
        }
      }
      reject(new Error("mailferry serve exited"));
    })();
  });
}

/** The database of a data directory as a (stopped or killed) server left it, opened for `fn` and closed again. */
export async function withDataDirDb<T>(dataDir: string, fn: (db: DB) => Promise<T>): Promise<T> {
  const store = await openStore(join(dataDir, DATABASE_FILE));
  try {
    return await fn(store.db);
  } finally {
    await store.close();
  }
}

/** Runs `mailferry <args>` with a node's environment in its data directory; its standard output, or throws with its error. */
export async function nodeCli(node: { dataDir: string; env: Record<string, string> }, args: string[]): Promise<string> {
  const result = await run([...CLI, ...args], { cwd: node.dataDir, env: node.env, timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`mailferry ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

type Stoppable = { kill(): Promise<unknown> } | { close(): Promise<unknown> } | { stop(): Promise<unknown> };

/** A multi-node test's teardown: each part stopped in the order given (one never started is skipped), then the directories removed. */
export async function stopAll(parts: (Stoppable | undefined)[], dirs: string[] = []): Promise<void> {
  for (const part of parts) {
    if (!part) continue;
    if ("kill" in part) await part.kill();
    else if ("close" in part) await part.close();
    else await part.stop();
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
