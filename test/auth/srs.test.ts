import { describe, expect, test } from "bun:test";
import { createSrs } from "../../src/auth/srs.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12);
const srsAt = (now: number, secrets = ["s3cret-key"]) => createSrs({ domain: "fwd.example", secrets, now: () => now });

describe("SRS rewriting", () => {
  test("SRS0 round trip, with the documented shape", () => {
    const srs = srsAt(T0);
    const rewritten = srs.forward("alice@orig.example");
    expect(rewritten).toMatch(/^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=orig\.example=alice@fwd\.example$/);
    expect(srs.isSrsAddress(rewritten)).toBe(true);
    expect(srs.reverse(rewritten)).toBe("alice@orig.example");
  });

  test("the null sender stays null; a sender of our own SRS domain is not rewritten", () => {
    const srs = srsAt(T0);
    expect(srs.forward("")).toBe("");
    expect(srs.forward("someone@fwd.example")).toBe("someone@fwd.example");
  });

  test("an address rewritten by another forwarder becomes SRS1 and reverses to that forwarder's SRS0", () => {
    const upstream = createSrs({ domain: "first.example", secrets: ["their-key"], now: () => T0 });
    const srs0 = upstream.forward("alice@orig.example");
    const srs1 = srsAt(T0).forward(srs0);
    expect(srs1).toMatch(/^SRS1=[A-Za-z0-9+/]{4}=first\.example==[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=orig\.example=alice@fwd\.example$/);
    expect(srsAt(T0).reverse(srs1)).toBe(srs0);
    expect(upstream.reverse(srs0)).toBe("alice@orig.example");
    // A third hop keeps the first hop and re-signs.
    const third = createSrs({ domain: "third.example", secrets: ["k3"], now: () => T0 });
    const again = third.forward(srs1);
    expect(again).toMatch(/^SRS1=[A-Za-z0-9+/]{4}=first\.example==/);
    expect(third.reverse(again)).toBe(srs0);
  });

  test("valid for 21 days, then expired", () => {
    const address = srsAt(T0).forward("alice@orig.example");
    expect(srsAt(T0 + 21 * DAY).reverse(address)).toBe("alice@orig.example");
    expect(srsAt(T0 + 22 * DAY).reverse(address)).toBeNull();
    // A timestamp from the future is not valid either.
    expect(srsAt(T0 - 2 * DAY).reverse(address)).toBeNull();
  });

  test("a tampered hash, domain or local part does not verify; case is ignored", () => {
    const srs = srsAt(T0);
    const address = srs.forward("alice@orig.example");
    const [tag, hash, tt, host, local] = address.split("@")[0]!.split("=");
    const flip = (c: string) => (c === "A" ? "B" : "A");
    expect(srs.reverse(`${tag}=${flip(hash![0]!)}${hash!.slice(1)}=${tt}=${host}=${local}@fwd.example`)).toBeNull();
    expect(srs.reverse(`${tag}=${hash}=${tt}=evil.example=${local}@fwd.example`)).toBeNull();
    expect(srs.reverse(`${tag}=${hash}=${tt}=${host}=mallory@fwd.example`)).toBeNull();
    expect(srs.reverse(address.toLowerCase())).toBe("alice@orig.example");
    expect(srs.reverse(address.toUpperCase().replace("@FWD.EXAMPLE", "@fwd.example"))).toBe("ALICE@ORIG.EXAMPLE");
    expect(srs.reverse("SRS0=garbage@fwd.example")).toBeNull();
    expect(srs.reverse(address.replace("@fwd.example", "@other.example"))).toBeNull();
  });

  test("after a key rotation the old key still verifies; the new key signs", () => {
    const old = srsAt(T0, ["old-key"]).forward("alice@orig.example");
    const rotated = srsAt(T0, ["new-key", "old-key"]);
    expect(rotated.reverse(old)).toBe("alice@orig.example");
    expect(srsAt(T0, ["old-key"]).reverse(rotated.forward("alice@orig.example"))).toBeNull();
  });
});

// Byte compatibility with Mail::SRS (Debian's libmail-srs-perl), when installed.
const perlHasSrs = Bun.spawnSync(["perl", "-MMail::SRS", "-e", "1"]).exitCode === 0;

function perl(script: string, ...args: string[]): string {
  const result = Bun.spawnSync(["perl", "-MMail::SRS", "-e", script, ...args]);
  if (result.exitCode !== 0) throw new Error(result.stderr.toString());
  return result.stdout.toString().trim();
}

describe.skipIf(!perlHasSrs)("interoperability with Mail::SRS", () => {
  const secret = "interop-secret";
  test("mailferry's SRS0 and SRS1 addresses reverse with Mail::SRS", () => {
    const srs = createSrs({ domain: "fwd.example", secrets: [secret] });
    const srs0 = srs.forward("alice@orig.example");
    expect(perl('print Mail::SRS->new(Secret => $ARGV[0], MaxAge => 21)->reverse($ARGV[1])', secret, srs0)).toBe("alice@orig.example");
    const upstream = createSrs({ domain: "first.example", secrets: ["x"] }).forward("bob@orig.example");
    const srs1 = srs.forward(upstream);
    expect(perl('print Mail::SRS->new(Secret => $ARGV[0], MaxAge => 21)->reverse($ARGV[1])', secret, srs1)).toBe(upstream);
  });

  test("Mail::SRS's addresses reverse with mailferry, and both write the same bytes", () => {
    const fromPerl = perl('print Mail::SRS->new(Secret => $ARGV[0], MaxAge => 21)->forward($ARGV[1], $ARGV[2])', secret, "carol@orig.example", "fwd.example");
    const srs = createSrs({ domain: "fwd.example", secrets: [secret] });
    expect(srs.reverse(fromPerl)).toBe("carol@orig.example");
    expect(srs.forward("carol@orig.example")).toBe(fromPerl);
    const perlSrs1 = perl('print Mail::SRS->new(Secret => $ARGV[0], MaxAge => 21)->forward($ARGV[1], $ARGV[2])', secret, "SRS0=abcd=AB=orig.example=dave@first.example", "fwd.example");
    expect(srs.forward("SRS0=abcd=AB=orig.example=dave@first.example")).toBe(perlSrs1);
  });
});
