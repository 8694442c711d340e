// Saving rules: validation with reasons, regex safety, atomic import, export round trip, and the routing cache.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../src/errors.ts";
import { createRouter } from "../../src/routing/router.ts";
import { validateAlias } from "../../src/aliases/rules.ts";
import { addAlias, exportAliases, findAliasByName, importAliases, listAliases, removeAliasById } from "../../src/store/aliases.ts";
import { openStore, type Store } from "../../src/store/db.ts";
import { addDomain, updateDomainSettings } from "../../src/store/domains.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "mailferry-aliases-"));
  store = await openStore(join(dir, "test.db"));
  await addDomain(store.db, "example.com");
  await addDomain(store.db, "copy.example");
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function userError(promise: Promise<unknown>): Promise<UserError> {
  const err = await promise.then(
    () => null,
    (e) => e,
  );
  if (!(err instanceof UserError)) throw new Error(`expected a UserError, got ${err}`);
  return err;
}

describe("validation on save", () => {
  test("a pattern that would backtrack catastrophically elsewhere is accepted: RE2 matches it in linear time", async () => {
    await addAlias(store.db, "example.com", { matcher: "regex", pattern: "^(a+)+$", recipients: ["x@y.test"] });
    expect((await listAliases(store.db)).map((a) => a.pattern)).toEqual(["^(a+)+$"]);
  });

  test("an invalid regex is refused with the reason, naming the field", async () => {
    const err = await userError(addAlias(store.db, "example.com", { matcher: "regex", pattern: "^(a|b$", recipients: ["x@y.test"] }));
    expect(err.field).toBe("pattern");
    expect(err.message).toContain("/^(a|b$/ refused: not a regular expression RE2 accepts");
    expect(await listAliases(store.db)).toEqual([]);
  });

  test("regexes longer than 256 characters, invalid, or using backreferences/lookaround are refused", async () => {
    const long = await userError(validateAlias({ matcher: "regex", pattern: `^${"a".repeat(256)}$`, recipients: ["x@y.test"] }));
    expect(long.message).toContain("longer than 256");
    expect((await userError(validateAlias({ matcher: "regex", pattern: "^(a|b$", recipients: ["x@y.test"] }))).message).toContain("not a regular expression RE2 accepts");
    expect((await userError(validateAlias({ matcher: "regex", pattern: "^(a)\\1$", recipients: ["x@y.test"] }))).message).toContain("backreferences");
    expect((await userError(validateAlias({ matcher: "regex", pattern: "^(?=a)a$", recipients: ["x@y.test"] }))).message).toContain("lookaround");
  });

  test("bad local parts, recipients and templates are refused naming the field", async () => {
    expect((await userError(validateAlias({ matcher: "exact", pattern: "a b", recipients: ["x@y.test"] }))).field).toBe("pattern");
    expect((await userError(validateAlias({ matcher: "exact", pattern: "a", recipients: ["not a recipient"] }))).field).toBe("recipients");
    expect((await userError(validateAlias({ matcher: "exact", pattern: "a", recipients: ["ftp://x.test/"] }))).field).toBe("recipients");
    expect((await userError(validateAlias({ matcher: "exact", pattern: "a", recipients: ["$1@x.test"] }))).message).toContain("only regex aliases");
    expect((await userError(validateAlias({ matcher: "exact", pattern: "a", recipients: [] }))).message).toContain("at least one recipient");
    const many = Array.from({ length: 11 }, (_, i) => `r${i}@x.test`);
    expect((await userError(validateAlias({ matcher: "exact", pattern: "a", recipients: many }))).message).toContain("limit of 10");
  });

  test("recipients are normalised: IDN domains to punycode, URLs canonical, duplicates dropped", async () => {
    const alias = await validateAlias({ matcher: "exact", pattern: "Hello", recipients: ["A@Bücher.Example", "a@xn--bcher-kva.example", "HTTPS://H.Example/hook", "Example.NET"] });
    expect(alias).toMatchObject({ pattern: "hello", recipients: ["A@xn--bcher-kva.example", "https://h.example/hook", "example.net"] });
  });

  test("a duplicate alias is a conflict; catch-all respects the domain setting", async () => {
    await addAlias(store.db, "example.com", { matcher: "exact", pattern: "hello", recipients: ["a@x.test"] });
    expect((await userError(addAlias(store.db, "example.com", { matcher: "exact", pattern: "HELLO", recipients: ["b@x.test"] }))).kind).toBe("conflict");
    await updateDomainSettings(store.db, "example.com", { catchAll: false });
    expect((await userError(addAlias(store.db, "example.com", { matcher: "catch-all", pattern: "*", recipients: ["b@x.test"] }))).message).toContain("turned off");
    expect((await userError(addAlias(store.db, "nope.example", { matcher: "exact", pattern: "a", recipients: ["b@x.test"] }))).kind).toBe("not_found");
  });

  test("domain settings are checked", async () => {
    expect((await userError(updateDomainSettings(store.db, "example.com", { randomSubdomainLength: 64 }))).field).toBe("random_subdomain_length");
    expect((await userError(updateDomainSettings(store.db, "example.com", { deliveryPort: 0 }))).field).toBe("delivery_port");
    expect((await userError(updateDomainSettings(store.db, "example.com", { maxTargets: 0 }))).field).toBe("max_targets");
  });
});

describe("import and export", () => {
  const valid = ["forward-email=hello:a@x.com,support:b@y.com", "forward-email=/^(support|info)$/:user+$1@gmail.com", "forward-email=!!!old:user@gmail.com"];

  test("a file mixing valid and invalid lines writes nothing and reports each bad line", async () => {
    const text = [...valid, "forward-email=/^(a|b$/:x@y.com", "forward-email=bad local:x@y.com", "nonsense", "forward-email=ok:a@x.com"].join("\n");
    const report = await importAliases(store.db, "example.com", text, { apply: true });
    expect(report.applied).toBe(false);
    expect(report.errors.map((e) => e.line)).toEqual([4, 5, 6]);
    expect(report.errors[0]!.message).toContain("RE2");
    expect(report.errors[1]!.token).toBe("bad local");
    expect(await listAliases(store.db)).toEqual([]);
  });

  test("dry run by default; --apply writes all rules and the port in one transaction", async () => {
    const text = [...valid, "forward-email-port=2526"].join("\n");
    const dry = await importAliases(store.db, "example.com", text, { apply: false });
    expect(dry).toMatchObject({ applied: false, errors: [], port: 2526 });
    expect(dry.aliases).toHaveLength(4);
    expect(await listAliases(store.db)).toEqual([]);
    const applied = await importAliases(store.db, "example.com", text, { apply: true });
    expect(applied.applied).toBe(true);
    expect((await listAliases(store.db, "example.com")).map((a) => a.pattern)).toEqual(["hello", "support", "^(support|info)$", "old"]);
    expect((await exportAliases(store.db, "example.com")).at(-1)).toBe("forward-email-port=2526");
  });

  test("importing over existing rules is refused unless --replace", async () => {
    await importAliases(store.db, "example.com", valid.join("\n"), { apply: true });
    const again = await importAliases(store.db, "example.com", "forward-email=hello:z@x.com,new:n@x.com", { apply: true });
    expect(again.applied).toBe(false);
    expect(again.errors.map((e) => e.message)).toEqual(["alias hello already exists on example.com (use --replace)"]);
    const replaced = await importAliases(store.db, "example.com", "forward-email=hello:z@x.com,new:n@x.com", { apply: true, replace: true });
    expect(replaced.applied).toBe(true);
    expect((await listAliases(store.db, "example.com")).map((a) => [a.pattern, a.recipients])).toEqual([
      ["hello", ["z@x.com"]],
      ["new", ["n@x.com"]],
    ]);
  });

  test("export then import into another domain reproduces the same rules", async () => {
    const text = [
      ...valid,
      "forward-email=multi:a@x.com,multi:b@y.com,multi:https://h.example/hook",
      "forward-email=/^([a-z]+)\\.([a-z]+)$/g:$1.$2@corp.com",
      "forward-email=/^(.*?)$/:https://x.example/hook?u=$1",
      "forward-email=!quiet",
      "forward-email=!!later",
      "forward-email=/^(linus|torvalds)$/:!!!",
      "forward-email=example.net,fallback@x.com",
    ].join("\n");
    expect((await importAliases(store.db, "example.com", text, { apply: true })).errors).toEqual([]);
    const exported = (await exportAliases(store.db, "example.com")).join("\n");
    expect((await importAliases(store.db, "copy.example", exported, { apply: true })).errors).toEqual([]);
    const shape = (rules: Awaited<ReturnType<typeof listAliases>>) => rules.map(({ id: _id, domain: _domain, ...rest }) => rest);
    expect(shape(await listAliases(store.db, "copy.example"))).toEqual(shape(await listAliases(store.db, "example.com")));
    expect((await exportAliases(store.db, "copy.example")).join("\n")).toBe(exported);
  });
});

describe("the regex examples of the Forward Email FAQ", () => {
  // Each example is one domain's TXT record in the FAQ; they import as written and route as it describes.
  const examples: [string, string, string | null][] = [
    ["forward-email=/^(linus|torvalds)$/:user@gmail.com", "linus", "user@gmail.com"],
    ["forward-email=/^([A-Za-z]+)+\\.([A-Za-z]+)+$/:$1.$2@company.com", "John.Smith", "John.Smith@company.com"],
    ["forward-email=/^(support|info)$/:user+$1@gmail.com", "info", "user+info@gmail.com"],
    ["forward-email=/^(.*?)$/:https://trafficlogic.co/webhook?username=$1", "jane", "https://trafficlogic.co/webhook?username=jane"],
    ["forward-email=/^(linus|torvalds)$/:!", "torvalds", null],
    ["forward-email=/^(linus|torvalds)$/:!!", "torvalds", null],
    ["forward-email=/^(linus|torvalds)$/:!!!", "torvalds", null],
  ];

  test.each(examples)("%s imports cleanly and routes", async (txt, local, expected) => {
    await addDomain(store.db, "faq.example");
    const report = await importAliases(store.db, "faq.example", txt, { apply: true });
    expect(report.errors).toEqual([]);
    expect(report.applied).toBe(true);
    const verdict = await createRouter(store.db).route(`${local}@faq.example`);
    if (expected === null) expect(verdict.action).not.toBe("deliver");
    else expect(verdict.action === "deliver" && verdict.targets.map((t) => (t.kind === "address" ? t.address : t.url))).toEqual([expected]);
  });
});

describe("the routing cache", () => {
  test("sees every change: its own connection's and another connection's (the CLI's)", async () => {
    const router = createRouter(store.db);
    expect((await router.route("hello@example.com")).action).toBe("refuse");
    await addAlias(store.db, "example.com", { matcher: "exact", pattern: "hello", recipients: ["a@x.test"] });
    expect((await router.route("hello@example.com")).action).toBe("deliver");

    const other = await openStore(join(dir, "test.db"));
    await removeAliasById(other.db, (await findAliasByName(other.db, "example.com", "hello")).id);
    await other.close();
    expect((await router.route("hello@example.com")).action).toBe("refuse");
  });

  test("is not reloaded while nothing changes", async () => {
    const router = createRouter(store.db);
    const first = await router.config();
    expect(await router.config()).toBe(first);
    await updateDomainSettings(store.db, "example.com", { acceptSubdomains: true });
    expect(await router.config()).not.toBe(first);
  });
});

describe("aliases on a subdomain", () => {
  const exact = (pattern: string) => ({ matcher: "exact" as const, pattern, recipients: ["a@x.test"] });

  test("need the domain to accept subdomains (its own setting, else the configured default)", async () => {
    expect((await userError(addAlias(store.db, "team.example.com", exact("hi")))).field).toBe("subdomain");
    const viaDefault = await addAlias(store.db, "team.example.com", exact("hi"), { addressDefaults: { subdomainMatch: true, randomSubdomain: false } });
    expect(viaDefault).toMatchObject({ domain: "example.com", subdomain: "team" });
    await updateDomainSettings(store.db, "example.com", { acceptSubdomains: false });
    expect((await userError(addAlias(store.db, "dev.team.example.com", exact("hi"), { addressDefaults: { subdomainMatch: true, randomSubdomain: false } }))).field).toBe("subdomain");
    await updateDomainSettings(store.db, "example.com", { acceptSubdomains: true });
    expect(await addAlias(store.db, "dev.team.example.com", exact("hi"))).toMatchObject({ subdomain: "dev.team" });
  });

  test("the same name may exist on the domain and on each subdomain; each is listed, exported and removed on its own", async () => {
    await updateDomainSettings(store.db, "example.com", { acceptSubdomains: true });
    await addAlias(store.db, "example.com", exact("hi"));
    await addAlias(store.db, "a.example.com", { ...exact("hi"), recipients: ["on-a@x.test"] });
    await addAlias(store.db, "b.example.com", { ...exact("hi"), recipients: ["on-b@x.test"] });
    expect((await userError(addAlias(store.db, "a.example.com", exact("hi")))).kind).toBe("conflict");
    expect(await exportAliases(store.db, "a.example.com")).toEqual(["forward-email=hi:on-a@x.test"]);
    expect(await exportAliases(store.db, "example.com")).toEqual(["forward-email=hi:a@x.test"]);
    await removeAliasById(store.db, (await findAliasByName(store.db, "a.example.com", "hi")).id);
    expect((await listAliases(store.db)).map((a) => `${a.pattern}@${a.subdomain || "-"}`)).toEqual(["hi@-", "hi@b"]);
    const router = createRouter(store.db);
    expect(await router.route("hi@b.example.com")).toMatchObject({ action: "deliver", targets: [{ address: "on-b@x.test" }] });
  });

  test("a subdomain that is a managed domain of its own keeps its aliases there", async () => {
    await updateDomainSettings(store.db, "example.com", { acceptSubdomains: true });
    await addDomain(store.db, "own.example.com");
    expect(await addAlias(store.db, "own.example.com", exact("hi"))).toMatchObject({ domain: "own.example.com", subdomain: "" });
  });

  test("a subdomain's import cannot carry the domain's delivery port", async () => {
    await updateDomainSettings(store.db, "example.com", { acceptSubdomains: true });
    const report = await importAliases(store.db, "team.example.com", "forward-email=hi:a@x.test\nforward-email-port=2525", { apply: true });
    expect(report.applied).toBe(false);
    expect(report.errors[0]!.message).toContain("delivery port is a setting of example.com");
  });
});
