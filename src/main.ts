#!/usr/bin/env bun
// The CLI is imported only after the heap budget is settled: a re-exec before
// it costs a process start, not the evaluation of the whole appliance twice.
import process from "node:process";

/**
 * JavaScriptCore grows its heap in proportion to the machine's RAM: on a host
 * with gigabytes free it lets garbage pile up to twice the live heap, in each
 * thread, before a full collection, and a server that keeps running holds the
 * peak. `serve` tells it a small machine instead, so garbage is collected while
 * the heap is small (docs/operations.md, "Memory"). An admin's own
 * BUN_JSC_forceRAMSize in the environment wins.
 */
const HEAP_BUDGET_BYTES = String(128 * 1024 * 1024);

if (process.argv[2] === "serve" && !process.env.BUN_JSC_forceRAMSize) {
  // execve keeps the process id (systemd, pid files and signals see one process). The
  // compiled binary takes the arguments alone; `bun src/main.ts` its flags and script too.
  const script = Bun.main.startsWith("/$bunfs/") ? [] : [...process.execArgv, Bun.main];
  // Typed optional (Node lacks it on Windows); Bun has it on Linux, where mailferry runs.
  process.execve!(process.execPath, [process.execPath, ...script, ...process.argv.slice(2)], { ...process.env, BUN_JSC_forceRAMSize: HEAP_BUDGET_BYTES });
}

const { runCli } = await import("./cli/index.ts");
const code = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(line + "\n"),
  err: (line) => process.stderr.write(line + "\n"),
  stdin: () => Bun.stdin.text(),
  env: process.env,
  cwd: process.cwd(),
});
process.exit(code);
