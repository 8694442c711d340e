// The one-time set-up token in <data>/setup-token: made on start while no admin
// exists, the same after a restart, printed by `mailferry admin setup-url`, and
// gone once the first admin exists (set-up page or `mailferry admin create`).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry } from "./support/mailferry.ts";
import { CLI, run } from "./support/smoke.ts";

const PASSWORD = "correct horse battery staple";
let dns: DnsServer;
const dirs: string[] = [];

beforeAll(async () => {
  dns = await startDnsServer({});
});
afterAll(async () => {
  await dns.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-setup-"));
  dirs.push(dir);
  return dir;
}

/** The CLI on `dir`, told the port the test server bound (so it prints the URL that server serves). */
const mf = (dir: string, args: string[], options: { port?: number; stdin?: string } = {}) =>
  run([...CLI, ...args], { cwd: dir, env: { MAILFERRY_DATA_DIR: dir, ...(options.port ? { MAILFERRY_HTTP_PORT: String(options.port) } : {}) }, stdin: options.stdin });

const portOf = (url: string) => Number(new URL(url).port);
const tokenFile = (dir: string) => join(dir, "setup-token");

test("no admin: start writes setup-token (0600), a restart keeps the URL valid, admin setup-url prints it", async () => {
  const dir = dataDir();
  const first = await startMailferry({ dns, dataDir: dir });
  const url = first.appliance.setupUrl!;
  expect(url).toMatch(/\/setup\?token=[\w-]{20,}$/);
  expect(statSync(tokenFile(dir)).mode & 0o777).toBe(0o600);
  await first.stop();

  const second = await startMailferry({ dns, dataDir: dir });
  try {
    const again = second.appliance.setupUrl!;
    expect(new URL(again).searchParams.get("token")).toBe(new URL(url).searchParams.get("token")!);
    expect((await fetch(again)).status).toBe(200);
    const printed = await mf(dir, ["admin", "setup-url"], { port: portOf(second.httpUrl) });
    expect(printed).toMatchObject({ exitCode: 0, stdout: `${again}\n` });
  } finally {
    await second.stop();
  }
});

test("the set-up page creating the first admin removes the token: the URL and admin setup-url are closed", async () => {
  const dir = dataDir();
  const mfServer = await startMailferry({ dns, dataDir: dir });
  try {
    const url = mfServer.appliance.setupUrl!;
    const token = new URL(url).searchParams.get("token")!;
    const body = new URLSearchParams({ token, username: "admin", password: PASSWORD, password2: PASSWORD });
    const created = await fetch(`${mfServer.httpUrl}setup`, { method: "POST", body, redirect: "manual" });
    expect(created.status).toBe(302);
    expect(existsSync(tokenFile(dir))).toBe(false);
    expect((await fetch(url)).status).toBe(404);
    const closed = await mf(dir, ["admin", "setup-url"], { port: portOf(mfServer.httpUrl) });
    expect(closed.exitCode).toBe(1);
    expect(closed.stderr).toContain("set-up is done: an admin exists");
  } finally {
    await mfServer.stop();
  }
});

test("admin create removes the token; a server started with an admin removes a stale one", async () => {
  const dir = dataDir();
  await (await startMailferry({ dns, dataDir: dir })).stop();
  expect(existsSync(tokenFile(dir))).toBe(true);
  expect(await mf(dir, ["admin", "create", "alice"], { stdin: `${PASSWORD}\n` })).toMatchObject({ exitCode: 0 });
  expect(existsSync(tokenFile(dir))).toBe(false);

  writeFileSync(tokenFile(dir), "stale-token\n", { mode: 0o600 });
  const restarted = await startMailferry({ dns, dataDir: dir });
  try {
    expect(restarted.appliance.setupUrl).toBeNull();
    expect(existsSync(tokenFile(dir))).toBe(false);
    expect((await fetch(`${restarted.httpUrl}setup?token=stale-token`)).status).toBe(404);
  } finally {
    await restarted.stop();
  }
});

test("admin setup-url before the server ever started: exit 1 saying how to get one; extra arguments are a usage error", async () => {
  const dir = dataDir();
  const none = await mf(dir, ["admin", "setup-url"]);
  expect(none.exitCode).toBe(1);
  expect(none.stderr).toContain("no set-up token");
  expect(none.stderr).toContain("start the server once");
  expect(none.stdout).toBe("");
  expect((await mf(dir, ["admin", "setup-url", "extra"])).exitCode).toBe(2);
});
