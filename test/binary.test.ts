// `npm run build` → dist/mailferry, run from another directory: the same
// smoke test as the source CLI. Its size, start-up time and idle RSS are
// printed for the README.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { buildBinary } from "./support/build.ts";
import { startSink } from "./support/sink.ts";
import { sendMail } from "./support/smtp-client.ts";
import { run, smokeTest } from "./support/smoke.ts";

let dns: DnsServer;
let elsewhere: string;
let binary: string;

beforeAll(async () => {
  dns = await startDnsServer({});
  elsewhere = mkdtempSync(join(tmpdir(), "mailferry-bin-"));
  const built = await buildBinary();
  // A copy outside the checkout: nothing may be read from the source tree.
  binary = join(elsewhere, "mailferry");
  copyFileSync(built, binary);
  chmodSync(binary, 0o755);
}, 120_000);
afterAll(async () => {
  await dns.close();
  rmSync(elsewhere, { recursive: true, force: true });
});

test("the compiled binary passes the smoke test from another directory", async () => {
  const result = await smokeTest([binary], elsewhere, dns);
  const sizeMb = statSync(binary).size / 1024 / 1024;
  console.log(`binary: ${sizeMb.toFixed(1)} MB, start-up ${result.startupMs} ms, idle RSS ${(result.idleRssKb / 1024).toFixed(1)} MB`);
  expect(result.idleRssKb).toBeGreaterThan(0);
}, 60_000);

test("the binary vets and matches regexes with RE2", async () => {
  const env = { MAILFERRY_DATA_DIR: join(elsewhere, "data-regex") };
  expect((await run([binary, "domain", "add", "regex.test"], { cwd: elsewhere, env })).exitCode).toBe(0);
  const invalid = await run([binary, "alias", "add", "regex.test", "/^(a|b$/", "x@y.test"], { cwd: elsewhere, env });
  expect(invalid.exitCode).toBe(2);
  expect(invalid.stderr).toContain("not a regular expression RE2 accepts");
  const safe = await run([binary, "alias", "add", "regex.test", "/^(sales|info)$/", "x+$1@y.test"], { cwd: elsewhere, env });
  expect(safe.exitCode).toBe(0);
  expect((await run([binary, "alias", "test", "info@regex.test"], { cwd: elsewhere, env })).stdout).toContain("x+info@y.test");
}, 60_000);

test("the binary serves the embedded htmx asset and prints its version", async () => {
  const version = await run([binary, "version"], { cwd: elsewhere });
  expect(version.stdout).toMatch(/^mailferry \d+\.\d+\.\d+/);
  const server = await serve({ MAILFERRY_DATA_DIR: join(elsewhere, "data-assets") });
  try {
    const res = await fetch(`${server.ready.admin_url}static/htmx.min.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("javascript");
    expect(await res.text()).toContain("htmx");
    expect((await fetch(`${server.ready.admin_url}static/nope.js`)).status).toBe(404);
  } finally {
    await server.stop();
  }
}, 60_000);

test("the binary forwards a message sealed (the authentication workers run inside the binary)", async () => {
  const sink = await startSink({ host: "127.0.0.1" });
  const zones = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.1"] } });
  const env = { MAILFERRY_DATA_DIR: join(elsewhere, "data-forward"), MAILFERRY_DNS_SERVERS: zones.address, MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true", MAILFERRY_GREYLIST_DELAY: "0", MAILFERRY_VERIFY_DESTINATIONS: "false" };
  try {
    expect((await run([binary, "domain", "add", "bin.test"], { cwd: elsewhere, env })).exitCode).toBe(0);
    expect((await run([binary, "alias", "add", "bin.test", "hello", "user@dest.test"], { cwd: elsewhere, env })).exitCode).toBe(0);
    const server = await serve(env);
    try {
      const port = Number(String(server.ready.smtp).split(":").pop());
      await sendMail(port, { from: "someone@sender.test", to: "hello@bin.test", subject: "from the binary" });
      const [message] = await sink.waitForMessages(1, 15_000);
      const headers = message!.raw.toString("utf8");
      expect(headers).toMatch(/^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=bin.test;/m);
      // The From is the author's: no DKIM signature of ours (docs/delivery-and-authentication.md, "What mailferry signs, and why").
      expect(headers).not.toMatch(/^DKIM-Signature:/m);
      expect(headers).toContain("Subject: from the binary");
    } finally {
      await server.stop();
    }
  } finally {
    await sink.close();
    await zones.close();
  }
}, 60_000);

/** `binary serve` from another directory, on free ports; resolves at its ready line. */
async function serve(env: Record<string, string>) {
  const proc = Bun.spawn([binary, "serve"], {
    cwd: elsewhere,
    env: { ...process.env, MAILFERRY_SMTP_PORT: "0", MAILFERRY_HTTP_PORT: "0", MAILFERRY_DNS_SERVERS: dns.address, ...env },
    stdout: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 45_000);
  // Read stdout to the end (the server keeps logging), resolving at the ready line.
  let output = "";
  const line = await new Promise<string | undefined>((resolve) => {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stdout) {
        output += decoder.decode(chunk);
        const ready = output.split("\n").find((l) => l.includes("mailferry.ready"));
        if (ready) resolve(ready);
      }
      resolve(undefined);
    })();
  });
  if (!line) throw new Error(`the binary exited before it was ready:\n${output}`);
  return {
    ready: JSON.parse(line) as Record<string, unknown>,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      clearTimeout(killer);
    },
  };
}
