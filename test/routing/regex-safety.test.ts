// Hostile patterns must never stall the listener. The check is about answers,
// not time: a backtracking engine hangs on these inputs (V8) or gives up and
// wrongly answers "no match" (JavaScriptCore); a linear-time engine answers
// right. It runs in a child process so that a regression cannot hang the suite.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("64-octet local parts are resolved against stored catastrophic patterns without stalling", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-regex-"));
  try {
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "../fixtures/resolve-against-hostile-pattern.ts"), dir], { stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => child.kill("SIGKILL"), 25_000);
    const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    clearTimeout(killer);
    expect(err).toBe("");
    expect(code).toBe(0);
    const verdicts = JSON.parse(out) as { action: string; targets?: { address: string }[] }[];
    // a…a! matches the alternation's second branch; the others match no pattern; a…a matches the first.
    expect(verdicts.map((v) => v.targets?.[0]?.address)).toEqual(["alt@x.test", "catch@x.test", "catch@x.test", "alt@x.test"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
