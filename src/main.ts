#!/usr/bin/env bun
import { runCli } from "./cli/index.ts";

const code = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(line + "\n"),
  err: (line) => process.stderr.write(line + "\n"),
  stdin: () => Bun.stdin.text(),
  env: process.env,
  cwd: process.cwd(),
});
process.exit(code);
