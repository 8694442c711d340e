// `mailferry serve` runs with a small heap budget for JavaScriptCore (src/main.ts,
// docs/operations.md "Memory"): it re-executes itself with BUN_JSC_forceRAMSize
// in the same process, unless the admin set the variable.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServe, type ServeProcess } from "./support/serve-process.ts";

let running: ServeProcess | null = null;
let dataDir = "";

afterEach(async () => {
  await running?.kill();
  running = null;
  rmSync(dataDir, { recursive: true, force: true });
});

/** The environment the process with this pid runs with now (after any execve). */
function environOf(pid: number): Map<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").filter(Boolean);
  return new Map(entries.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}

async function serve(env: Record<string, string> = {}): Promise<ServeProcess> {
  dataDir = mkdtempSync(join(tmpdir(), "mailferry-heap-"));
  running = await startServe({ MAILFERRY_DATA_DIR: dataDir, MAILFERRY_SMTP_PORT: "0", MAILFERRY_HTTP_PORT: "0", MAILFERRY_DNS_SERVERS: "127.0.0.1:9", ...env });
  return running;
}

test("serve tells JavaScriptCore a 128 MB machine, in the process it was started as", async () => {
  const server = await serve();
  // The spawned pid answers: execve kept it, and its environment now holds the budget.
  expect(environOf(server.proc.pid).get("BUN_JSC_forceRAMSize")).toBe(String(128 * 1024 * 1024));
  const health = await fetch(`${server.httpUrl}/healthz`);
  expect(health.status).toBe(200);
});

test("an admin's own BUN_JSC_forceRAMSize wins", async () => {
  const server = await serve({ BUN_JSC_forceRAMSize: String(512 * 1024 * 1024) });
  expect(environOf(server.proc.pid).get("BUN_JSC_forceRAMSize")).toBe(String(512 * 1024 * 1024));
});
