// The start-up smoke test, shared by `bun src/main.ts` and the compiled
// binary: a real process, real ports, real SMTP, then SIGTERM.
import { afterAll, beforeAll, expect } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "./dns-server.ts";
import { SmtpTalk } from "./smtp-client.ts";

export interface SmokeResult {
  startupMs: number;
  idleRssKb: number;
  stdout: string;
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion (killed after `timeoutMs`); `stdin` is its standard input (default: none). */
export async function run(command: string[], options: { cwd: string; env?: Record<string, string>; stdin?: string; timeoutMs?: number }): Promise<Run> {
  const stdin = options.stdin === undefined ? "ignore" : new Blob([options.stdin]);
  const proc = Bun.spawn(command, { cwd: options.cwd, env: { ...cleanEnv(), ...options.env }, stdin, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 20_000);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { exitCode, stdout, stderr };
}

/**
 * The CLI from source on a fresh data dir with a test DNS server, both set
 * up before and removed after the file's tests; `mf` runs one command.
 */
export function cliSandbox(name: string, env: Record<string, string> = {}) {
  const sandbox = { dns: undefined as unknown as DnsServer, dataDir: "" };
  beforeAll(async () => {
    sandbox.dns = await startDnsServer({});
    sandbox.dataDir = mkdtempSync(join(tmpdir(), `mailferry-${name}-`));
  });
  afterAll(async () => {
    await sandbox.dns.close();
    rmSync(sandbox.dataDir, { recursive: true, force: true });
  });
  const mf = (args: string[], extra: Record<string, string> = {}) =>
    run([...CLI, ...args], { cwd: sandbox.dataDir, env: { MAILFERRY_DATA_DIR: sandbox.dataDir, MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true", ...env, ...extra } });
  return { sandbox, mf };
}

/** The CLI run from source by the Bun running the tests. */
export const CLI = [process.execPath, join(import.meta.dir, "../../src/main.ts")];

/** The environment without any MAILFERRY_* of the developer's shell. */
export function cleanEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith("MAILFERRY_") && v !== undefined)) as Record<string, string>;
}

/**
 * Starts `command serve` in `cwd` with a fresh data dir, waits for the ready
 * line, checks /healthz and an SMTP session with STARTTLS, relay refusal and
 * a managed domain, then stops it with SIGTERM and expects exit code 0.
 */
export async function smokeTest(command: string[], cwd: string, dns: DnsServer): Promise<SmokeResult> {
  const dataDir = mkdtempSync(join(tmpdir(), "mailferry-smoke-"));
  const env = {
    MAILFERRY_DATA_DIR: dataDir,
    MAILFERRY_SMTP_PORT: "0",
    MAILFERRY_HTTP_PORT: "0",
    MAILFERRY_DNS_SERVERS: dns.address,
    MAILFERRY_HOSTNAME: "mx.smoke.test",
    MAILFERRY_GREYLIST_DELAY: "0",
    MAILFERRY_VERIFY_DESTINATIONS: "false",
    MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
  };
  try {
    const added = await run([...command, "domain", "add", "smoke.test"], { cwd, env });
    expect(added).toMatchObject({ exitCode: 0, stdout: "added smoke.test\n" });
    const alias = await run([...command, "alias", "add", "smoke.test", "hello", "someone@elsewhere.test"], { cwd, env });
    expect(alias).toMatchObject({ exitCode: 0, stdout: "added smoke.test  hello -> someone@elsewhere.test\n" });

    const started = performance.now();
    const proc = Bun.spawn([...command, "serve"], { cwd, env: { ...cleanEnv(), ...env }, stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    try {
      const stdout = collect(proc.stdout);
      const ready = await stdout.ready;
      const startupMs = Math.round(performance.now() - started);
      const health = await fetch(String(ready.health_url)).then((r) => r.json());
      expect(health).toMatchObject({ status: "ok", db: { ok: true }, smtp: { listening: true } });
      const metrics = await fetch(String(ready.health_url).replace(/healthz$/, "metrics"));
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain("# TYPE mailferry_smtp_connections_total counter");

      const smtpPort = Number(String(ready.smtp).split(":").pop());
      const { talk, greeting } = await SmtpTalk.connect(smtpPort);
      expect(greeting.text).toStartWith("mx.smoke.test ESMTP");
      await talk.send("EHLO smoke-client.test");
      expect((await talk.send("STARTTLS")).code).toBe(220);
      expect(["TLSv1.2", "TLSv1.3"]).toContain((await talk.startTls()).getProtocol()!);
      await talk.send("EHLO smoke-client.test");
      expect((await talk.send("MAIL FROM:<someone@sender.test>")).code).toBe(250);
      expect((await talk.send("RCPT TO:<victim@elsewhere.test>")).code).toBe(550);
      expect((await talk.send("RCPT TO:<hello@smoke.test>")).code).toBe(250);
      expect((await talk.send("RCPT TO:<nobody@smoke.test>")).code).toBe(550);
      await talk.send("QUIT");
      talk.close();

      await Bun.sleep(300);
      const idleRssKb = rssKb(proc.pid);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      const output = await stdout.all;
      expect(output).toContain("mailferry.stopped");
      return { startupMs, idleRssKb, stdout: output };
    } finally {
      clearTimeout(killer);
      proc.kill("SIGKILL");
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Reads a process's stdout to the end, resolving `ready` at the mailferry.ready line. */
function collect(stream: ReadableStream<Uint8Array>) {
  let output = "";
  let onReady!: (line: Record<string, unknown>) => void;
  let onExit!: (err: Error) => void;
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => ((onReady = resolve), (onExit = reject)));
  const all = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      output += decoder.decode(chunk);
      const line = output.split("\n").find((l) => l.includes('"mailferry.ready"'));
      if (line) onReady(JSON.parse(line));
    }
    onExit(new Error(`mailferry exited before it was ready:\n${output}`));
    return output;
  })();
  return { ready, all };
}

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}
