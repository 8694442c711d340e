import { expect, test } from "bun:test";
import { join } from "node:path";

test("the code type-checks under strict TypeScript", async () => {
  const root = join(import.meta.dir, "..");
  const proc = Bun.spawn([join(root, "node_modules/.bin/tsc"), "--noEmit", "-p", root], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect(out + err).toBe("");
  expect(await proc.exited).toBe(0);
}, 120_000);
