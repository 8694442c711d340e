// docs/configuration.md is generated from SETTINGS; these fail when the file
// and the code disagree, and say how to regenerate it.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { envName, flagName, SETTINGS, tomlName } from "../src/config/index.ts";
import { configurationReference } from "../src/config/reference.ts";

const ROOT = join(import.meta.dir, "..");
const REGENERATE = "docs/configuration.md differs from the settings table in src/config/index.ts: run `npm run docs` and commit the result";

describe("docs/configuration.md", () => {
  test("is exactly what the settings table generates", () => {
    const file = readFileSync(join(ROOT, "docs/configuration.md"), "utf8");
    if (file !== configurationReference()) throw new Error(REGENERATE);
  });

  test("has a row for every setting: TOML place, environment variable, flag and default", () => {
    const rows = configurationReference().split("\n").filter((line) => line.startsWith("| "));
    for (const s of SETTINGS) {
      const row = rows.find((r) => r.startsWith(`| \`${tomlName(s)}\` |`));
      expect(row, tomlName(s)).toBeDefined();
      expect(row).toContain(`\`${envName(s)}\``);
      expect(row).toContain(`\`--${flagName(s)}\``);
      expect(row).toContain(s.doc.replaceAll("|", "\\|"));
    }
    expect(rows.find((r) => r.includes("`MAILFERRY_DATA_DIR`"))).toContain("`./data`");
  });

  test("`mailferry config reference` prints it, and `npm run docs` writes that output", () => {
    const proc = Bun.spawnSync([process.execPath, "src/main.ts", "config", "reference"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(proc.exitCode).toBe(0);
    expect(proc.stdout.toString()).toBe(configurationReference());
    const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;
    expect(scripts.docs).toBe("bun src/main.ts config reference > docs/configuration.md");
  });
});
