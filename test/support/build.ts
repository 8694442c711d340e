// The compiled binary (`npm run build` → dist/mailferry), for the tests that run it.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { run } from "./smoke.ts";

const CHECKOUT = join(import.meta.dir, "../..");
export const BINARY = join(CHECKOUT, "dist/mailferry");

/** Runs `npm run build`; throws with its output when it fails. */
export async function buildBinary(): Promise<string> {
  const build = await run(["npm", "run", "--silent", "build"], { cwd: CHECKOUT, timeoutMs: 120_000 });
  if (build.exitCode !== 0) throw new Error(`npm run build failed (exit ${build.exitCode}):\n${build.stdout}${build.stderr}`);
  return BINARY;
}

/** dist/mailferry, built first when it is missing or older than a source file. */
export async function compiledBinary(): Promise<string> {
  return existsSync(BINARY) && statSync(BINARY).mtimeMs >= newestSource() ? BINARY : buildBinary();
}

function newestSource(): number {
  const times = [statSync(join(CHECKOUT, "package.json")).mtimeMs];
  for (const dir of ["src", "views"]) {
    for (const path of readdirSync(join(CHECKOUT, dir), { recursive: true }) as string[]) times.push(statSync(join(CHECKOUT, dir, path)).mtimeMs);
  }
  return Math.max(...times);
}
