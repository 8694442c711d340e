// The routing decision, table-driven: every rule of docs/aliases.md and its edge cases.
import { beforeAll, describe, expect, test } from "bun:test";
import { postmasterRecipient, route, type Route } from "../../src/routing/resolve.ts";
import { type AliasRule, buildRoutingConfig, DEFAULT_DOMAIN_SETTINGS, type DomainSettings, effectiveSettings, NO_SUBDOMAINS, parseAliasName, type RoutingConfig, validateAlias } from "../../src/aliases/rules.ts";
import type { DisabledMode } from "../../src/aliases/rules.ts";

type RuleSpec = [name: string, recipients: string[], disabled?: DisabledMode];

/**
 * Builds a routing configuration the way stored rules are made: through
 * validateAlias. A rule named `name@sub` is an alias on the subdomain `sub`.
 */
async function routing(domains: Record<string, { settings?: Partial<DomainSettings>; rules?: RuleSpec[] }>, verified: string[] | null = null): Promise<RoutingConfig> {
  const rules: AliasRule[] = [];
  let id = 0;
  for (const [domain, { rules: specs = [] }] of Object.entries(domains)) {
    for (const [spec, recipients, disabled] of specs) {
      const [name, subdomain = ""] = spec.startsWith("/") ? [spec] : spec.split("@");
      // Validated with default settings: a domain's own settings may have changed after its rules were made.
      const valid = await validateAlias({ ...parseAliasName(name!), recipients, disabled: disabled ?? null });
      rules.push({ ...valid, id: ++id, domain, subdomain });
    }
  }
  return buildRoutingConfig(
    Object.entries(domains).map(([name, d]) => ({ name, settings: effectiveSettings({ ...DEFAULT_DOMAIN_SETTINGS, ...d.settings }, NO_SUBDOMAINS) })),
    rules,
    verified === null ? null : { confirmed: new Set(verified), aliases: "all" },
  );
}

let config: RoutingConfig;
beforeAll(async () => {
  const six = (prefix: string) => Array.from({ length: 6 }, (_, i) => `${prefix}${i}@x.test`);
  config = await routing({
    "example.com": {
      rules: [
        ["hello", ["a@x.test"]],
        ["multi", ["a@x.test", "b@y.test", "A@x.test"]],
        ["support", ["help@x.test"]],
        ["support+vip", ["vip@x.test"]],
        ["tagged", ["user+a@x.test"]],
        ["/^r-(.*)$/", ["first-$1@x.test"]],
        ["/^r-x$/", ["second@x.test"]],
        ["/^(linus|torvalds)$/", ["kernel@x.test"]],
        ["torvalds", ["exact-torvalds@x.test"]],
        ["/^([a-z]+)\\.([a-z]+)$/", ["$1.$2@corp.test"]],
        ["/^hook-(.*)$/", ["https://h.example/hook?u=$1"]],
        ["/^empty(.*)$/", ["$1@corp.test"]],
        ["/^g(\\d+)$/g", ["g$1@x.test"]],
        ["dropped", [], "drop"],
        ["soft", ["a@x.test"], "soft"],
        ["hard", [], "hard"],
        ["loop-a", ["loop-b@example.com"]],
        ["loop-b", ["loop-a@example.com"]],
        ["team", ["linus@example.com", "c@x.test"]],
        ["team2", ["a@x.test", "hello@example.com"]],
        ["d1", ["d2@example.com"]],
        ["d2", ["d3@example.com"]],
        ["d3", ["d4@example.com"]],
        ["d4", ["d5@example.com"]],
        ["d5", ["d6@example.com"]],
        ["d6", ["d7@example.com"]],
        ["d7", ["end@x.test"]],
        ["ok-depth", ["d3@example.com"]],
        ["big1", six("p")],
        ["big2", six("q")],
        ["big", ["big1@example.com", "big2@example.com"]],
        ["to-dropped", ["dropped@example.com", "z@x.test"]],
        ["to-hard", ["hard@example.com"]],
        ["to-nobody", ["nobody@nocatch.com"]],
        ["*", ["catch@x.test"]],
      ],
    },
    "nocatch.com": { settings: { catchAll: false }, rules: [["hello", ["a@x.test"]], ["*", ["never@x.test"]]] },
    "fwd.com": { settings: { deliveryPort: 2526 }, rules: [["*", ["example.net"]]] },
    "sub.test": { settings: { acceptSubdomains: true }, rules: [["x", ["sub-x@x.test"]]] },
    "nosub.test": { rules: [["x", ["nosub-x@x.test"]]] },
    "own.sub.test": { rules: [["x", ["own-x@x.test"]]] },
    "xn--bcher-kva.example": { rules: [["hello", ["buecher@x.test"]]] },
  });
});

const addresses = (v: Route) => (v.action === "deliver" ? v.targets.map((t) => (t.kind === "address" ? t.address : t.url)) : v.action === "drop" ? "drop" : `${v.reply.code} ${v.reply.enhanced}`);

describe("route(recipient, config)", () => {
  const cases: [recipient: string, expected: string[] | string, why: string][] = [
    ["hello@example.com", ["a@x.test"], "exact alias"],
    ["HELLO@Example.COM", ["a@x.test"], "local part and domain are case-insensitive"],
    ["hello@example.com.", ["a@x.test"], "a trailing dot on the domain is removed"],
    ["multi@example.com", ["a@x.test", "b@y.test"], "several recipients, each once (case-insensitive dedupe)"],
    ["hello+news@example.com", ["a+news@x.test"], "plus tag is carried to the address recipient"],
    ["support+vip@example.com", ["vip@x.test"], "an explicit alias for hello+tag wins over plus-addressing"],
    ["support+other@example.com", ["help+other@x.test"], "other tags fall back to the base alias"],
    ["tagged+b@example.com", ["user+a@x.test"], "a recipient with its own tag keeps it"],
    ["linus@example.com", ["kernel@x.test"], "regex alias"],
    ["LINUS@example.com", ["kernel@x.test"], "regex flag i is always on"],
    ["torvalds@example.com", ["exact-torvalds@x.test"], "exact beats regex"],
    ["r-x@example.com", ["first-x@x.test"], "regexes are tried in creation order"],
    ["john.smith@example.com", ["john.smith@corp.test"], "$1.$2 substitution into an address"],
    ["hook-a&b@example.com", ["https://h.example/hook?u=a%26b"], "substitution into a URL is percent-encoded"],
    ["empty@example.com", "550 5.1.3", "a substitution producing an invalid address is refused"],
    ["g42@example.com", ["g42@x.test"], "regex with /g"],
    ["linus+lists@example.com", ["kernel+lists@x.test"], "plus tag with a regex matched on the local part without the tag"],
    ["random@example.com", ["catch@x.test"], "catch-all"],
    ["random+tag@example.com", ["catch+tag@x.test"], "plus tag with the catch-all"],
    ["dropped@example.com", "drop", "!alias: accepted and discarded"],
    ["soft@example.com", "421 4.2.1", "!!alias: soft refusal"],
    ["hard@example.com", "550 5.2.1", "!!!alias: hard refusal"],
    ["loop-a@example.com", "550 5.4.6", "recursion loop is detected"],
    ["team@example.com", ["kernel@x.test", "c@x.test"], "a recipient on a managed domain is replaced by its own targets"],
    ["team2@example.com", ["a@x.test"], "targets reached twice through recursion are sent once"],
    ["ok-depth@example.com", ["end@x.test"], "five levels of nesting are allowed"],
    ["d1@example.com", "550 5.4.6", "deeper nesting is refused"],
    ["big@example.com", "550 5.5.3", "more unique targets than the limit after expansion"],
    ["to-dropped@example.com", ["z@x.test"], "a dropped child contributes nothing"],
    ["to-hard@example.com", "550 5.2.1", "a refused child refuses the parent"],
    ["to-nobody@example.com", "550 5.1.1", "a child that does not exist refuses the parent"],
    ["hello@nocatch.com", ["a@x.test"], "exact on a domain without catch-all"],
    ["other@nocatch.com", "550 5.1.1", "unknown alias with catch-all turned off"],
    ["x@fwd.com", ["x@example.net"], "domain recipient keeps the local part"],
    ["x+y@fwd.com", ["x+y@example.net"], "domain recipient keeps the whole local part"],
    ["x@team.sub.test", ["sub-x@x.test"], "subdomain suffix matching on"],
    ["x@dev.team.sub.test", ["sub-x@x.test"], "any depth of subdomain"],
    ["x@own.sub.test", ["own-x@x.test"], "a subdomain that is its own domain uses its own aliases"],
    ["x@team.nosub.test", "550 5.7.1", "subdomain suffix matching off"],
    ["hello@bücher.example", ["buecher@x.test"], "IDN domain matched in punycode"],
    ["HELLO@BÜCHER.example", ["buecher@x.test"], "IDN domain case-folded"],
    ["x@gmail.test", "550 5.7.1", "unmanaged domain: never an open relay"],
    ["x@[127.0.0.1]", "550 5.7.1", "address literal is never managed"],
    ["not-an-address", "501 5.1.3", "malformed recipient"],
  ];
  for (const [recipient, expected, why] of cases) {
    test(`${recipient}: ${why}`, () => {
      expect(addresses(route(recipient, config))).toEqual(expected);
    });
  }

  test("an exact alias with recipients never also sends to the catch-all", () => {
    const v = route("hello@example.com", config);
    expect(v.action === "deliver" && v.targets.every((t) => t.alias.label === "hello")).toBe(true);
  });

  test("each target names the alias that produced it", () => {
    const v = route("team@example.com", config);
    if (v.action !== "deliver") throw new Error("expected deliver");
    expect(v.targets.map((t) => t.alias.label)).toEqual(["/^(linus|torvalds)$/", "team"]);
    expect(v.alias.label).toBe("team");
  });

  test("a /g regex matches every time (no lastIndex state between calls)", () => {
    for (let i = 0; i < 5; i++) expect(addresses(route(`g${i}@example.com`, config))).toEqual([`g${i}@x.test`]);
  });

  test("the delivery port of the alias's domain travels with its targets", () => {
    const v = route("x@fwd.com", config);
    expect(v.action === "deliver" && v.targets[0]!.kind === "address" && v.targets[0]!.port).toBe(2526);
  });

  test("refusals explain themselves", () => {
    const big = route("big@example.com", config);
    expect(big.action === "refuse" && big.reply.text).toBe("big@example.com forwards to 12 addresses, more than the limit of 10");
    const loop = route("loop-a@example.com", config);
    expect(loop.action === "refuse" && loop.reply.text).toBe("routing loop: loop-a@example.com -> loop-b@example.com -> loop-a@example.com");
  });

  test("a local part longer than 64 octets never reaches a regex", async () => {
    const long = await routing({ "l.test": { rules: [["/^a+$/", ["x@x.test"]]] } });
    expect(addresses(route(`${"a".repeat(64)}@l.test`, long))).toEqual(["x@x.test"]);
    expect(addresses(route(`${"a".repeat(65)}@l.test`, long))).toBe("501 5.1.3");
  });
});

describe("aliases on a subdomain (addresses such as name@x7k2p9q1.example.com)", () => {
  let sub: RoutingConfig;
  beforeAll(async () => {
    sub = await routing({
      "closed.test": { rules: [["name@x7k2p9q1", ["random@x.test"]], ["name", ["base@x.test"]], ["name@dev.team", ["deep@x.test"]]] },
      "open.test": { settings: { acceptSubdomains: true }, rules: [["name@team", ["team@x.test"]], ["other", ["other@x.test"]], ["*", ["catch@x.test"]]] },
    });
  });
  const cases: [recipient: string, expected: string[] | string, why: string][] = [
    ["name@x7k2p9q1.closed.test", ["random@x.test"], "the subdomain's own alias, though the domain does not accept subdomains"],
    ["NAME@X7K2P9Q1.closed.test", ["random@x.test"], "case-insensitive"],
    ["name@closed.test", ["base@x.test"], "the domain's alias of the same name is another alias"],
    ["other@x7k2p9q1.closed.test", "550 5.1.1", "nothing else on that subdomain, and no fallback to the domain"],
    ["name@other.closed.test", "550 5.7.1", "a subdomain without aliases is not served"],
    ["name@dev.team.closed.test", ["deep@x.test"], "a subdomain of several labels"],
    ["name@team.open.test", ["team@x.test"], "the subdomain's alias wins over the domain's"],
    ["other@team.open.test", ["other@x.test"], "with subdomain matching on, the domain's aliases apply next"],
    ["nobody@team.open.test", ["catch@x.test"], "…and its catch-all last"],
    ["name@open.test", ["catch@x.test"], "a subdomain alias never answers for the domain itself"],
  ];
  for (const [recipient, expected, why] of cases) {
    test(`${recipient}: ${why}`, () => {
      expect(addresses(route(recipient, sub))).toEqual(expected);
    });
  }
});

describe("destination verification", () => {
  let v: RoutingConfig;
  beforeAll(async () => {
    v = await routing(
      {
        "v.test": {
          rules: [
            ["pending", ["new@gmail.test"]],
            ["mixed", ["ok@gmail.test", "new@gmail.test", "https://h.example/hook"]],
            ["tagged", ["ok@gmail.test"]],
            ["inside", ["pending@v.test"]],
            ["local", ["mixed@v.test"]],
            ["domain", ["gmail.test"]],
            ["/^r-(.*)$/", ["$1@gmail.test"]],
          ],
        },
      },
      ["ok@gmail.test"],
    );
  });

  test("an alias whose only destination is unverified answers 450 4.1.1 and says why", () => {
    const verdict = route("pending@v.test", v);
    expect(addresses(verdict)).toBe("450 4.1.1");
    expect(verdict.action === "refuse" && verdict.reply.text).toBe("pending@v.test: forwarding destination new@gmail.test is not verified yet");
  });

  test("verified destinations (and webhooks) still receive; the unverified ones are listed", () => {
    const verdict = route("mixed@v.test", v);
    expect(addresses(verdict)).toEqual(["ok@gmail.test", "https://h.example/hook"]);
    expect(verdict.action === "deliver" && verdict.unverified).toEqual(["new@gmail.test"]);
  });

  test("plus-addressing adds a tag to a verified destination without a new verification", () => {
    expect(addresses(route("tagged+x@v.test", v))).toEqual(["ok+x@gmail.test"]);
  });

  test("destinations are checked after expansion through managed aliases", () => {
    expect(addresses(route("inside@v.test", v))).toBe("450 4.1.1");
    expect(addresses(route("local@v.test", v))).toEqual(["ok@gmail.test", "https://h.example/hook"]);
  });

  test("addresses made by domain recipients and regex substitution need verification too", () => {
    expect(addresses(route("ok@domain.v.test", v))).toBe("550 5.7.1");
    expect(addresses(route("domain@v.test", v))).toBe("450 4.1.1");
    expect(addresses(route("r-ok@v.test", v))).toEqual(["ok@gmail.test"]);
    expect(addresses(route("r-new@v.test", v))).toBe("450 4.1.1");
  });

  test("without verification (the setting off) every destination receives", async () => {
    const off = await routing({ "v.test": { rules: [["pending", ["new@gmail.test"]]] } });
    expect(addresses(route("pending@v.test", off))).toEqual(["new@gmail.test"]);
  });
});

describe("postmasterRecipient: RCPT TO:<postmaster> without a domain (RFC 5321 §4.5.1)", () => {
  test("the host name's own domain, else the nearest managed domain above it, else the first managed domain", async () => {
    const two = await routing({ "first.test": {}, "example.com": {} });
    expect(postmasterRecipient("postmaster", "example.com", two)).toBe("postmaster@example.com");
    expect(postmasterRecipient("Postmaster", "mx.example.com", two)).toBe("postmaster@example.com");
    expect(postmasterRecipient("postmaster", "mx.elsewhere.test", two)).toBe("postmaster@first.test");
    expect(postmasterRecipient("postmaster", "mx.elsewhere.test", await routing({}))).toBe("postmaster");
  });

  test("any other recipient is left as it is", async () => {
    expect(postmasterRecipient("someone@example.com", "example.com", await routing({ "example.com": {} }))).toBe("someone@example.com");
  });
});
