// The layering rules of docs/architecture.md, checked on every import in src/
// (type-only imports too: they tie a layer to another's vocabulary just the
// same). A new forbidden import fails here with the file and the rule.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const SRC = join(import.meta.dir, "../src");

interface Import {
  /** Importing file, relative to src/ (e.g. `store/db.ts`). */
  from: string;
  /** Imported module, relative to src/ (e.g. `mail/reply.ts`, `../views/layout.tsx`). */
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : []));
}

const SPECIFIER = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

function imports(): Import[] {
  return sourceFiles(SRC).flatMap((file) =>
    [...readFileSync(file, "utf8").matchAll(SPECIFIER)].map((m) => ({ from: relative(SRC, file), to: relative(SRC, normalize(join(dirname(file), m[1] ?? m[2]!))) })),
  );
}

/** The folder of a module under src/ (`store`), or the file's own name for top-level ones (`app.ts`). */
const layer = (path: string) => (path.includes("/") ? path.split("/")[0]! : path);

/** Layer → the layers it must not import. */
const FORBIDDEN: Record<string, { not: string[]; why: string }> = {
  mail: { not: ["*"], why: "the core vocabulary imports nothing else of mailferry" },
  net: { not: ["*"], why: "which network addresses are private is vocabulary too" },
  aliases: { not: ["*", "!mail", "!net", "!errors.ts"], why: "the alias model is pure: the vocabulary and user errors only" },
  config: { not: ["*", "!mail"], why: "settings are declared from the vocabulary alone" },
  store: { not: ["routing", "policy", "auth", "smtp", "submission", "delivery", "service", "web", "cli", "tls", "doctor", "metrics", "dns", "backup", "app.ts"], why: "storage knows no stage of the mail's journey" },
};

/** The stages decide; the SMTP layer runs them. A stage reads the session's shape (smtp/session.ts), nothing else of smtp/. */
const STAGES = ["auth", "policy", "routing", "delivery"];
for (const stage of STAGES) FORBIDDEN[stage] = { not: ["smtp", "!smtp/session.ts", "submission", "service", "app.ts"], why: "a stage of the journey does not call the SMTP layer or the admin services" };

function violates(edge: Import): string | null {
  const rule = FORBIDDEN[layer(edge.from)];
  const target = layer(edge.to);
  if (target === layer(edge.from)) return null;
  if (rule && !rule.not.includes(`!${edge.to}`)) {
    const all = rule.not.includes("*");
    const denied = all ? !rule.not.includes(`!${target}`) : rule.not.includes(target);
    if (denied) return rule.why;
  }
  // The edges: only the entry points wire them in.
  if (target === "web" && !["app.ts", "web"].includes(layer(edge.from))) return "only app.ts mounts the web app";
  if (target === "cli" && !["main.ts", "cli"].includes(layer(edge.from))) return "only main.ts runs the CLI";
  return null;
}

test("no import breaks the layering rules of docs/architecture.md", () => {
  const edges = imports();
  expect(edges.length).toBeGreaterThan(300);
  const broken = edges.flatMap((e) => {
    const why = violates(e);
    return why ? [`${e.from} imports ${e.to}: ${why}`] : [];
  });
  expect(broken).toEqual([]);
});

test("the rules catch a forbidden import (the check itself works)", () => {
  expect(violates({ from: "mail/reply.ts", to: "store/db.ts" })).toContain("imports nothing");
  expect(violates({ from: "store/aliases.ts", to: "routing/resolve.ts" })).toContain("storage");
  expect(violates({ from: "doctor/facts.ts", to: "cli/health.ts" })).toContain("only main.ts");
  expect(violates({ from: "smtp/hooks.ts", to: "web/app.ts" })).toContain("only app.ts");
  expect(violates({ from: "store/aliases.ts", to: "aliases/rules.ts" })).toBeNull();
  expect(violates({ from: "delivery/index.ts", to: "smtp/hooks.ts" })).toContain("a stage");
  expect(violates({ from: "delivery/index.ts", to: "smtp/session.ts" })).toBeNull();
  expect(violates({ from: "delivery/outbox.ts", to: "submission/listener.ts" })).toContain("a stage");
});

test("no import cycle between files (value imports)", () => {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    const values = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s+(?!type\s)[^;]*?from\s+["'](\.[^"']+)["']/g)].map((m) => relative(SRC, normalize(join(dirname(file), m[1]!))));
    graph.set(relative(SRC, file), values);
  }
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (node: string, path: string[]) => {
    if (state.get(node) === "done") return;
    if (state.get(node) === "open") {
      cycles.push([...path.slice(path.indexOf(node)), node].join(" -> "));
      return;
    }
    state.set(node, "open");
    for (const next of graph.get(node) ?? []) if (graph.has(next)) visit(next, [...path, node]);
    state.set(node, "done");
  };
  for (const node of graph.keys()) visit(node, []);
  expect(cycles).toEqual([]);
});

test("every query lives in store/, and every audited change goes through service/", () => {
  const outside = (folder: string) => sourceFiles(SRC).filter((f) => !relative(SRC, f).startsWith(`${folder}/`));
  const queries = outside("store").filter((f) => /\.(selectFrom|insertInto|updateTable|deleteFrom)\(/.test(readFileSync(f, "utf8")));
  expect(queries.map((f) => relative(SRC, f))).toEqual([]);
  const audits = outside("service").filter((f) => !relative(SRC, f).startsWith("store/") && /import \{[^}]*\baudit\b[^}]*\} from "[^"]*store\/audit\.ts"/.test(readFileSync(f, "utf8")));
  expect(audits.map((f) => relative(SRC, f))).toEqual([]);
});

test("no two modules export the same name (a name says one thing), migrations' up aside", () => {
  const where = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    if (relative(SRC, file).startsWith("store/migrations/")) continue;
    for (const m of readFileSync(file, "utf8").matchAll(/^export (?:async )?(?:function|const|interface|type|class) (\w+)/gm)) {
      where.set(m[1]!, [...(where.get(m[1]!) ?? []), relative(SRC, file)]);
    }
  }
  expect([...where].filter(([, files]) => files.length > 1).map(([name, files]) => `${name}: ${files.join(", ")}`)).toEqual([]);
});
