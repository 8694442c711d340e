import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authDecision, type AuthResults } from "../../src/auth/inbound.ts";
import { friendlyFrom, needsFriendlyFrom } from "../../src/delivery/compose.ts";
import { headerBlockEnd } from "../../src/mail/headers.ts";
import { addAllow, entryMatches, listAllow, parseSenderEntry } from "../../src/store/allowlist.ts";
import { openStore, type Store } from "../../src/store/db.ts";

const base: AuthResults = {
  headers: "",
  bodyHash: "",
  spf: "pass",
  dkim: "none",
  dmarc: "none",
  arc: "none",
  bimi: "none",
  fromDomain: "sender.test",
  dmarcPolicy: null,
  dmarcPct: 100,
  alignedDkim: false,
  spfAligned: true,
  arcSeal: { authResults: "", cv: "none" },
  detail: { spf: null, dkim: null, dmarc: null, arc: null, bimi: null },
};

describe("authDecision", () => {
  test("DMARC reject is sampled by pct", () => {
    const failing = { ...base, dmarc: "fail", dmarcPolicy: "reject" as const };
    expect(authDecision({ ...failing, dmarcPct: 50 }, { random: () => 0.49 })?.reply.code).toBe(550);
    expect(authDecision({ ...failing, dmarcPct: 50 }, { random: () => 0.51 })).toBeNull();
    expect(authDecision({ ...failing, dmarcPct: 0 }, { random: () => 0 })).toBeNull();
  });
  test("temperror anywhere is 421, even for an allowlisted sender", () => {
    for (const field of ["spf", "dmarc"] as const) expect(authDecision({ ...base, [field]: "temperror" }, { exempt: true })?.reply.code).toBe(421);
    expect(authDecision({ ...base, dkim: "pass,temperror" })?.reply.code).toBe(421);
  });
  test("quarantine and soft fails pass", () => {
    expect(authDecision({ ...base, dmarc: "fail", dmarcPolicy: "quarantine", spf: "softfail" })).toBeNull();
  });
});

describe("friendly-from", () => {
  const message = (from: string, extra = "") => Buffer.from(`Subject: s\r\nFrom: ${from}\r\n${extra}To: x@y.test\r\n\r\nbody\r\n`);
  const rewrite = (raw: Buffer) => friendlyFrom(raw, headerBlockEnd(raw), "hello@example.test").toString();

  test("only when the sender's DMARC would fail after forwarding", () => {
    expect(needsFriendlyFrom({ dmarcPolicy: "reject", alignedDkim: false })).toBe(true);
    expect(needsFriendlyFrom({ dmarcPolicy: "quarantine", alignedDkim: false })).toBe(true);
    expect(needsFriendlyFrom({ dmarcPolicy: "reject", alignedDkim: true })).toBe(false);
    expect(needsFriendlyFrom({ dmarcPolicy: "none", alignedDkim: false })).toBe(false);
    expect(needsFriendlyFrom({ dmarcPolicy: null, alignedDkim: false })).toBe(false);
  });

  test("keeps header order and every other byte; quotes and encodes the display name", () => {
    expect(rewrite(message("Ann <ann@s.test>"))).toBe(
      'Subject: s\r\nFrom: "Ann via hello@example.test" <hello@example.test>\r\nX-Original-From: Ann <ann@s.test>\r\nReply-To: Ann <ann@s.test>\r\nTo: x@y.test\r\n\r\nbody\r\n',
    );
    expect(rewrite(message("ann@s.test"))).toContain('From: "ann@s.test via hello@example.test" <hello@example.test>\r\n');
    expect(rewrite(message('"A \\"Q\\" B" <a@s.test>'))).toContain('From: "A \\"Q\\" B via hello@example.test" <hello@example.test>\r\n');
    const encoded = rewrite(message("=?UTF-8?B?SsO8cmdlbg==?= <j@s.test>"));
    expect(encoded).toMatch(/\r\nFrom: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?= <hello@example\.test>\r\n/);
    expect(Buffer.from(/=\?UTF-8\?B\?([^?]+)\?=/.exec(encoded)![1]!, "base64").toString()).toBe("Jürgen via hello@example.test");
  });
});

describe("allowlist", () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mailferry-allow-"));
    store = await openStore(join(dir, "t.db"));
    for (const e of ["192.0.2.7", "198.51.100.0/24", "2001:db8::/32", "partner.test", "boss@corp.test"]) await addAllow(store.db, e);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("entries are recognised by their form", () => {
    expect(parseSenderEntry("10.0.0.1")).toEqual({ kind: "ip", value: "10.0.0.1" });
    expect(parseSenderEntry("10.0.0.0/8")).toEqual({ kind: "cidr", value: "10.0.0.0/8" });
    expect(parseSenderEntry("Boss@Corp.TEST")).toEqual({ kind: "address", value: "boss@corp.test" });
    expect(() => parseSenderEntry("10.0.0.0/33")).toThrow();
  });

  const who = (ip: string, mailFrom = "x@other.test", clientHost: string | null = null) => listAllow(store.db).then((entries) => entries.some((e) => entryMatches(e, { ip, mailFrom, host: clientHost })));
  test("matching by IP, CIDR (v4 and v6), domain (envelope or client name, and subdomains) and address", async () => {
    expect(await who("192.0.2.7")).toBe(true);
    expect(await who("192.0.2.8")).toBe(false);
    expect(await who("198.51.100.200")).toBe(true);
    expect(await who("2001:db8::42")).toBe(true);
    expect(await who("203.0.113.1", "news@mail.partner.test")).toBe(true);
    expect(await who("203.0.113.1", "x@other.test", "out1.partner.test")).toBe(true);
    expect(await who("203.0.113.1", "x@notpartner.test")).toBe(false);
    expect(await who("203.0.113.1", "boss@corp.test")).toBe(true);
    expect(await who("203.0.113.1", "intern@corp.test")).toBe(false);
  });
});
