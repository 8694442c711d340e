#!/usr/bin/env bun
// The CLI is imported only after the engine's options are settled: a re-exec before
// it costs a process start, not the evaluation of the whole appliance twice.
import process from "node:process";

/**
 * JavaScriptCore options `serve` runs with, unless the environment sets them
 * (docs/operations.md, "Memory"; measured in docs/benchmarks.md):
 * - forceRAMSize: JavaScriptCore grows its heap in proportion to the machine's
 *   RAM; on a host with gigabytes free it lets garbage pile up to twice the live
 *   heap, in each thread, and a server keeps the peak. A small machine instead,
 *   so garbage is collected while the heap is small.
 * - useFTLJIT: the top JIT tier's code and compile work cost memory that a server
 *   waiting on sockets does not win back in speed.
 */
const ENGINE_DEFAULTS: Record<string, string> = { BUN_JSC_forceRAMSize: String(128 * 1024 * 1024), BUN_JSC_useFTLJIT: "false" };

if (process.argv[2] === "serve" && Object.keys(ENGINE_DEFAULTS).some((name) => process.env[name] === undefined)) {
  // execve keeps the process id (systemd, pid files and signals see one process). The
  // compiled binary takes the arguments alone; `bun src/main.ts` its flags and script too.
  const script = Bun.main.startsWith("/$bunfs/") ? [] : [...process.execArgv, Bun.main];
  // Typed optional (Node lacks it on Windows); Bun has it on Linux, where mailferry runs.
  process.execve!(process.execPath, [process.execPath, ...script, ...process.argv.slice(2)], { ...ENGINE_DEFAULTS, ...process.env });
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
