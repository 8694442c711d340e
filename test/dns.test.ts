import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import dgram from "node:dgram";
import { createResolver, DnsError, expandIPv6, reverseName } from "../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";

// A real 2048-bit DKIM public key: its TXT value is longer than 255 bytes, so
// it is published as several character-strings of one record.
const dkimPair = generateKeyPairSync("rsa", { modulusLength: 2048 });
const dkimKey = dkimPair.publicKey.export({ type: "spki", format: "der" }).toString("base64");
const dkimRecord = `v=DKIM1; k=rsa; p=${dkimKey}`;

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer({
    "example.test": {
      MX: [
        { priority: 20, exchange: "mx2.example.test" },
        { priority: 10, exchange: "mx1.example.test" },
      ],
      TXT: ["v=spf1 ip4:127.0.0.2 -all"],
      A: ["127.0.0.2"],
    },
    "mailferry._domainkey.example.test": { TXT: [dkimRecord] },
    "big.example.test": { TXT: Array.from({ length: 12 }, (_, i) => `record-${i}-${"x".repeat(200)}`) },
    "tc.example.test": { TXT: ["only over tcp"], truncate: true },
    "v6.example.test": { AAAA: ["::1"] },
    "alias.example.test": { CNAME: "example.test" },
    "broken.example.test": { rcode: "SERVFAIL" },
    "refused.example.test": { rcode: "REFUSED" },
    "short-ttl.example.test": { A: ["127.0.0.9"], ttl: 2 },
    [reverseName("127.0.0.2")]: { PTR: ["mx1.example.test"] },
  });
});
afterAll(() => dns.close());

const resolver = (extra: Partial<Parameters<typeof createResolver>[0]> = {}) => createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000, ...extra });

describe("resolver against the loopback DNS server", () => {
  test("MX records with priorities", async () => {
    const mx = await resolver().resolveMx("example.test");
    expect(mx.sort((a, b) => a.priority - b.priority)).toEqual([
      { exchange: "mx1.example.test", priority: 10 },
      { exchange: "mx2.example.test", priority: 20 },
    ]);
  });

  test("a 2048-bit DKIM key split into 255-byte strings resolves as one record", async () => {
    expect(dkimRecord.length).toBeGreaterThan(255);
    const txt = await resolver().resolveTxt("mailferry._domainkey.example.test");
    expect(txt).toHaveLength(1);
    expect(txt[0]!.length).toBeGreaterThan(1);
    expect(txt[0]!.every((s) => Buffer.byteLength(s) <= 255)).toBe(true);
    expect(txt[0]!.join("")).toBe(dkimRecord);
  });

  test("A, AAAA and PTR", async () => {
    const r = resolver();
    expect(await r.resolve("example.test", "A")).toEqual(["127.0.0.2"]);
    expect(await r.resolve("v6.example.test", "AAAA")).toEqual(["::1"]);
    expect(await r.reverse("127.0.0.2")).toEqual(["mx1.example.test"]);
  });

  test("names are case-insensitive and a trailing dot is ignored", async () => {
    expect(await resolver().resolve("EXAMPLE.Test.", "A")).toEqual(["127.0.0.2"]);
  });

  test("a CNAME is followed to the records of its target", async () => {
    expect(await resolver().resolve("alias.example.test", "A")).toEqual(["127.0.0.2"]);
  });

  test("a truncated UDP answer is retried over TCP", async () => {
    const before = dns.queries.length;
    expect(await resolver().resolveTxt("tc.example.test")).toEqual([["only over tcp"]]);
    expect(dns.queries.slice(before).map((q) => q.proto)).toEqual(["udp", "tcp"]);
  });

  test("an answer too big for the UDP payload size arrives whole over TCP", async () => {
    const txt = await resolver().resolveTxt("big.example.test");
    expect(txt).toHaveLength(12);
  });

  test("NXDOMAIN is ENOTFOUND and a missing type is ENODATA, both negative", async () => {
    const r = resolver();
    const nx = await r.resolveMx("nope.example.test").catch((e) => e);
    expect(nx).toBeInstanceOf(DnsError);
    expect(nx.code).toBe("ENOTFOUND");
    expect(nx.isNegative).toBe(true);
    const nodata = await r.resolveMx("v6.example.test").catch((e) => e);
    expect(nodata.code).toBe("ENODATA");
  });

  test("SERVFAIL and REFUSED are temporary errors, not negative answers", async () => {
    const r = resolver();
    const servfail = await r.resolveMx("broken.example.test").catch((e) => e);
    expect(servfail.code).toBe("ESERVFAIL");
    expect(servfail.isNegative).toBe(false);
    expect((await r.resolveMx("refused.example.test").catch((e) => e)).code).toBe("EREFUSED");
  });

  test("a server that never answers times out with ETIMEOUT, bounded by timeout × attempts", async () => {
    const mute = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => mute.bind(0, "127.0.0.1", () => resolve()));
    try {
      const r = createResolver({ servers: [{ host: "127.0.0.1", port: mute.address().port }], timeout: 100, attempts: 2 });
      const err = await r.resolveMx("example.test").catch((e) => e);
      expect(err.code).toBe("ETIMEOUT");
      expect(r.queriesSent).toBe(2);
    } finally {
      mute.close();
    }
  });

  test("the next server is asked when the first one fails", async () => {
    const mute = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => mute.bind(0, "127.0.0.1", () => resolve()));
    try {
      const r = createResolver({
        servers: [
          { host: "127.0.0.1", port: mute.address().port },
          { host: dns.host, port: dns.port },
        ],
        timeout: 100,
      });
      expect(await r.resolve("example.test", "A")).toEqual(["127.0.0.2"]);
    } finally {
      mute.close();
    }
  });

  test("answers are cached for their TTL, then asked again", async () => {
    let clock = 1_000_000;
    const r = resolver({ now: () => clock });
    await r.resolve("short-ttl.example.test", "A");
    await r.resolve("short-ttl.example.test", "A");
    expect(r.queriesSent).toBe(1);
    clock += 1_500;
    await r.resolve("short-ttl.example.test", "A");
    expect(r.queriesSent).toBe(1);
    clock += 1_000;
    await r.resolve("short-ttl.example.test", "A");
    expect(r.queriesSent).toBe(2);
  });

  test("negative answers are cached; temporary errors are not", async () => {
    const r = resolver();
    await r.resolveMx("nope.example.test").catch(() => {});
    await r.resolveMx("nope.example.test").catch(() => {});
    expect(r.queriesSent).toBe(1);
    await r.resolveMx("broken.example.test").catch(() => {});
    await r.resolveMx("broken.example.test").catch(() => {});
    expect(r.queriesSent).toBe(3);
  });

  test("concurrent identical lookups share one query", async () => {
    const r = resolver();
    await Promise.all([r.resolveMx("example.test"), r.resolveMx("example.test"), r.resolveMx("example.test")]);
    expect(r.queriesSent).toBe(1);
  });

  test("an invalid name is refused without a query", async () => {
    const r = resolver();
    expect((await r.resolveMx("bad..name").catch((e) => e)).code).toBe("EBADNAME");
    expect((await r.resolveMx("x".repeat(64) + ".test").catch((e) => e)).code).toBe("EBADNAME");
    expect(r.queriesSent).toBe(0);
  });
});

describe("mailauth through the resolver", () => {
  test("a DKIM signature made with a 2048-bit key verifies with the key looked up by mailferry's resolver", async () => {
    const message = "From: alice@example.test\r\nTo: bob@elsewhere.test\r\nSubject: signed\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nHello.\r\n";
    const privateKey = dkimPair.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    // The README documents signatureData; the bundled typings also require the top-level fields.
    const key = { signingDomain: "example.test", selector: "mailferry", privateKey };
    const { signatures } = await dkimSign(message, { ...key, signatureData: [key] });
    expect(signatures).toContain("DKIM-Signature:");
    const r = resolver();
    const result = await dkimVerify(signatures + message, { resolver: r.forMailauth });
    expect(result.results[0]!.signingDomain).toBe("example.test");
    expect(result.results[0]!.status.result).toBe("pass");
    expect(dns.queries.some((q) => q.name === "mailferry._domainkey.example.test" && q.type === "TXT")).toBe(true);
  });
});

describe("reverse names", () => {
  test("IPv4 and IPv6", () => {
    expect(reverseName("192.0.2.10")).toBe("10.2.0.192.in-addr.arpa");
    expect(reverseName("2001:db8::1")).toBe("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    expect(expandIPv6("::ffff:192.0.2.1")).toBe("0000:0000:0000:0000:0000:ffff:c000:0201");
  });
});
