// The Forward Email TXT syntax: every documented form parses, prints and round-trips.
import { describe, expect, test } from "bun:test";
import { parseTxt, printTxt } from "../../src/aliases/txt.ts";

const rules = (text: string) => {
  const parsed = parseTxt(text);
  expect(parsed.errors).toEqual([]);
  return parsed.aliases.map(({ line: _line, column: _column, ...alias }) => alias);
};

describe("parseTxt", () => {
  const cases: [string, object[]][] = [
    [
      "forward-email=hello:a@x.com,support:b@y.com",
      [
        { matcher: "exact", pattern: "hello", recipients: ["a@x.com"], disabled: null },
        { matcher: "exact", pattern: "support", recipients: ["b@y.com"], disabled: null },
      ],
    ],
    ["forward-email=a@x.com,b@y.com", [{ matcher: "catch-all", pattern: "*", recipients: ["a@x.com", "b@y.com"], disabled: null }]],
    ["forward-email=example.net", [{ matcher: "catch-all", pattern: "*", recipients: ["example.net"], disabled: null }]],
    ["forward-email=hello:https://h.example/hook", [{ matcher: "exact", pattern: "hello", recipients: ["https://h.example/hook"], disabled: null }]],
    ["forward-email=https://h.example/all", [{ matcher: "catch-all", pattern: "*", recipients: ["https://h.example/all"], disabled: null }]],
    ["forward-email=/^(support|info)$/:user+$1@gmail.com", [{ matcher: "regex", pattern: "^(support|info)$", global: false, recipients: ["user+$1@gmail.com"], disabled: null }]],
    ["forward-email=/^(.*?)$/:https://x.example/hook?u=$1", [{ matcher: "regex", pattern: "^(.*?)$", global: false, recipients: ["https://x.example/hook?u=$1"], disabled: null }]],
    ["forward-email=/^a{1,3}$/g:x@y.com", [{ matcher: "regex", pattern: "^a{1,3}$", global: true, recipients: ["x@y.com"], disabled: null }]],
    ["forward-email=/^a\\/b[/,]$/:x@y.com", [{ matcher: "regex", pattern: "^a\\/b[/,]$", global: false, recipients: ["x@y.com"], disabled: null }]],
    ["forward-email=!alias", [{ matcher: "exact", pattern: "alias", recipients: [], disabled: "drop" }]],
    ["forward-email=!!alias", [{ matcher: "exact", pattern: "alias", recipients: [], disabled: "soft" }]],
    ["forward-email=!!!alias", [{ matcher: "exact", pattern: "alias", recipients: [], disabled: "hard" }]],
    ["forward-email=!!!alias:user@gmail.com", [{ matcher: "exact", pattern: "alias", recipients: ["user@gmail.com"], disabled: "hard" }]],
    ["forward-email=/^(linus|torvalds)$/:!!", [{ matcher: "regex", pattern: "^(linus|torvalds)$", global: false, recipients: [], disabled: "soft" }]],
    [
      // The FAQ's example: hello goes to first@, and the bare second@ is the catch-all.
      "forward-email=hello:first@gmail.com,second@gmail.com",
      [
        { matcher: "exact", pattern: "hello", recipients: ["first@gmail.com"], disabled: null },
        { matcher: "catch-all", pattern: "*", recipients: ["second@gmail.com"], disabled: null },
      ],
    ],
    [
      // Several TXT records combine; an alias's recipients accumulate in order.
      "forward-email=hello:user+a@gmail.com\nforward-email=hello:user+b@gmail.com\n\n# a comment\n\"forward-email=user+c@gmail.com\"",
      [
        { matcher: "exact", pattern: "hello", recipients: ["user+a@gmail.com", "user+b@gmail.com"], disabled: null },
        { matcher: "catch-all", pattern: "*", recipients: ["user+c@gmail.com"], disabled: null },
      ],
    ],
  ];
  for (const [text, expected] of cases) {
    test(text.split("\n")[0]!, () => expect(rules(text)).toEqual(expected as never));
  }

  test("forward-email-port sets the delivery port", () => {
    expect(parseTxt("forward-email-port=1337\nforward-email=a@x.com").port).toBe(1337);
  });

  test("errors name the offending token and its line and column; the rest still parses", () => {
    const parsed = parseTxt(["forward-email=hello:a@x.com,,ok:b@y.com", "v=spf1 -all", "forward-email=!!!!x", "forward-email=/^(a|b$/:c@d.com", "forward-email-port=99999", "forward-email=x:"].join("\n"));
    expect(parsed.errors.map((e) => [e.line, e.column, e.token])).toEqual([
      [1, 29, ""],
      [2, 1, "v"],
      [3, 15, "!!!!x"],
      [5, 20, "99999"],
      [6, 15, "x:"],
    ]);
    expect(parsed.errors[2]!.message).toContain("at most three !");
    // An invalid regex is well-formed TXT; validation refuses it on import.
    expect(parsed.aliases.map((a) => a.pattern)).toEqual(["hello", "ok", "^(a|b$"]);
  });

  test("an alias written as both enabled and disabled is an error", () => {
    const parsed = parseTxt("forward-email=hello:a@x.com,!!!hello:b@x.com");
    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0]!.token).toBe("!!!hello:b@x.com");
  });
});

describe("printTxt", () => {
  test("prints every form, and parsing the output gives the same rules", () => {
    const original = [
      "forward-email=hello:a@x.com,hello:b@y.com",
      "forward-email=/^(support|info)$/:user+$1@gmail.com",
      "forward-email=/^(.*?)$/g:https://x.example/hook?u=$1",
      "forward-email=!!!alias:user@gmail.com",
      "forward-email=!!soft",
      "forward-email=!quiet",
      "forward-email=/^(linus|torvalds)$/:!!!",
      "forward-email=example.net,a@x.com",
      "forward-email-port=1337",
    ].join("\n");
    const parsed = parseTxt(original);
    expect(parsed.errors).toEqual([]);
    const printed = printTxt(
      parsed.aliases.map((a) => ({ ...a, global: !!a.global, disabled: a.disabled ?? null })),
      parsed.port,
    );
    expect(printed.join("\n")).toBe(original);
  });

  test("a comma inside a URL is percent-encoded so it cannot split the record", () => {
    const [line] = printTxt([{ matcher: "exact", pattern: "h", global: false, recipients: ["https://x.example/?a=1,2"], disabled: null }]);
    expect(line).toBe("forward-email=h:https://x.example/?a=1%2C2");
    expect(rules(line!)[0]).toMatchObject({ recipients: ["https://x.example/?a=1%2C2"] });
  });
});
