// Relative links in README.md and docs/*.md lead somewhere: the file exists,
// and a #fragment names a heading of it (GitHub's anchor rules), so moving
// text between the docs cannot silently break the way to it.
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const DOCS = [join(ROOT, "README.md"), ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => join(ROOT, "docs", f))];

/** Markdown without its fenced code blocks, where link syntax means nothing. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, "");
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

function anchors(file: string): Set<string> {
  return new Set([...prose(readFileSync(file, "utf8")).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!.trim())));
}

test("every relative link in README.md and docs/ points at an existing file and heading", () => {
  const broken: string[] = [];
  for (const file of DOCS) {
    for (const [, target] of prose(readFileSync(file, "utf8")).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, fragment] = target!.split("#");
      const to = path ? join(dirname(file), path) : file;
      const where = `${relative(ROOT, file)}: ${target}`;
      if (!existsSync(to)) broken.push(`${where} (no such file)`);
      else if (fragment && to.endsWith(".md") && !anchors(to).has(fragment)) broken.push(`${where} (no such heading)`);
    }
  }
  expect(broken).toEqual([]);
});

test("README.md stays a first read: at most 250 lines, linking every docs/ page", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  expect(readme.split("\n").length).toBeLessThanOrEqual(250);
  const pages = DOCS.filter((f) => f.includes("/docs/")).map((f) => `docs/${relative(join(ROOT, "docs"), f)}`);
  expect(pages.filter((page) => !readme.includes(`](${page})`))).toEqual([]);
});
