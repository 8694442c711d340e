// `mailferry health [--wait]`, the unit's ExecStartPost: a real process asking a
// real server's /healthz at the configured address.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { healthUrl } from "../src/doctor/health.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry } from "./support/mailferry.ts";
import { freePort } from "./support/ports.ts";
import { CLI, run } from "./support/smoke.ts";

let dns: DnsServer;
let cwd: string;

beforeAll(async () => {
  dns = await startDnsServer({});
  cwd = mkdtempSync(join(tmpdir(), "mailferry-health-"));
});
afterAll(async () => {
  await dns.close();
  rmSync(cwd, { recursive: true, force: true });
});

const health = (port: number, ...args: string[]) => run([...CLI, "health", ...args], { cwd, env: { MAILFERRY_DATA_DIR: cwd, MAILFERRY_HTTP_PORT: String(port) } });

test("a running server: exit 0 naming the URL it asked", async () => {
  const mf = await startMailferry({ dns });
  try {
    const port = Number(new URL(mf.httpUrl).port);
    expect(await health(port)).toMatchObject({ exitCode: 0, stdout: `ok: http://127.0.0.1:${port}/healthz\n` });
  } finally {
    await mf.stop();
  }
});

test("nothing listening: exit 1 with the URL and the reason, also after --wait runs out", async () => {
  const port = await freePort();
  const once = await health(port);
  expect(once.exitCode).toBe(1);
  expect(once.stderr).toContain(`not healthy: http://127.0.0.1:${port}/healthz: nothing answers (connection refused)`);
  const waited = await health(port, "--wait", "1s");
  expect(waited.exitCode).toBe(1);
  expect(waited.stderr).toContain("(waited 1s)");
});

test("--wait keeps asking until a server that starts later answers", async () => {
  const port = await freePort();
  const asking = health(port, "--wait", "15s");
  await Bun.sleep(1000);
  const mf = await startMailferry({ dns, env: { MAILFERRY_HTTP_PORT: String(port) } });
  try {
    expect(await asking).toMatchObject({ exitCode: 0, stdout: `ok: http://127.0.0.1:${port}/healthz\n` });
  } finally {
    await mf.stop();
  }
});

test("a bad --wait or an argument is a usage error (2)", async () => {
  const bad = await health(1, "--wait", "soon");
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain('--wait "soon"');
  expect((await health(1, "extra")).exitCode).toBe(2);
});

test("a wildcard listen address is asked on loopback", () => {
  expect(healthUrl({ http: { host: "0.0.0.0", port: 8080, tls: false, publicUrl: null } })).toBe("http://127.0.0.1:8080/healthz");
  expect(healthUrl({ http: { host: "::", port: 8080, tls: true, publicUrl: null } })).toBe("https://[::1]:8080/healthz");
  expect(healthUrl({ http: { host: "127.0.0.2", port: 9000, tls: false, publicUrl: null } })).toBe("http://127.0.0.2:9000/healthz");
});
