// `mailferry dns check` (and `domain dns --check`, the same report) against
// the test DNS server, as a real process; and the admin UI's domain page,
// which shows the same report with this server's host records.
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { reverseName } from "../src/dns/resolver.ts";
import { createAdmin, createSession } from "../src/store/admins.ts";
import { createToken } from "../src/store/tokens.ts";
import type { Zones } from "./support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME } from "./support/mailferry.ts";
import { cliSandbox } from "./support/smoke.ts";

// Each test runs the CLI several times, a second or more each on a busy machine.
setDefaultTimeout(60_000);

const HOST = "mx.check.test";
const { sandbox, mf } = cliSandbox("dns-check", { MAILFERRY_HOSTNAME: HOST, MAILFERRY_DNS_TIMEOUT: "1s" });
const withDns = () => ({ MAILFERRY_DNS_SERVERS: sandbox.dns.address });
const dnsCheck = (...args: string[]) => mf(["dns", "check", ...args], withDns());
const lines = (text: string) => text.trimEnd().split("\n");

interface Published {
  name: string;
  type: string;
  value: string;
}

/** A correct set-up: every record `domain dns --json` lists, the host's addresses and a PTR for each naming it. */
async function publishAll(...domains: string[]): Promise<Zones> {
  const zones: Zones = {};
  const at = (name: string) => (zones[name.replace(/\.$/, "")] ??= {});
  for (const domain of domains) {
    for (const r of JSON.parse((await mf(["domain", "dns", domain, "--json"])).stdout) as Published[]) {
      const [priority, exchange] = r.value.split(" ");
      if (r.type === "MX") (at(r.name).MX ??= []).push({ priority: Number(priority), exchange: exchange!.replace(/\.$/, "") });
      // A record several domains list (the SRS domain's SPF) is published once: DNS holds a set.
      if (r.type === "TXT" && !at(r.name).TXT?.includes(r.value)) (at(r.name).TXT ??= []).push(r.value);
      if (r.type === "CNAME") at(r.name).CNAME = r.value.replace(/\.$/, "");
    }
  }
  Object.assign(at(HOST), { A: ["127.0.0.1"], AAAA: ["::1"] });
  zones[reverseName("127.0.0.1")] = { PTR: [HOST] };
  zones[reverseName("::1")] = { PTR: [HOST] };
  sandbox.dns.zones = zones;
  return zones;
}

describe("mailferry dns check <domain>", () => {
  test("a correct zone: every record ✓ with its zone line, host address and PTR included, exit 0", async () => {
    expect((await mf(["domain", "add", "check.test"])).exitCode).toBe(0);
    await publishAll("check.test");
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toMatch(/[✗!] /);
    const out = lines(r.stdout);
    expect(out[0]).toBe("check.test");
    expect(out).toContain("  ✓ MX: mail for the domain comes to mailferry");
    expect(out).toContain("  ✓ DMARC: forwarded copies with a rewritten From are DKIM-signed and pass (recommended)");
    expect(out).toContain(`${HOST} (this server)`);
    expect(out).toContain("  ✓ A: the MX host name has an address");
    expect(out).toContain(`      ${HOST}. 3600 IN A 127.0.0.1`);
    expect(out).toContain("  ✓ AAAA: the MX host name has an address");
    expect(out).toContain("  ✓ PTR of 127.0.0.1 names the MX host (reverse DNS: set it at your hosting provider)");
    expect(out).toContain(`      1.0.0.127.in-addr.arpa. 3600 IN PTR ${HOST}.`);
    expect(out).toContain("  ✓ PTR of ::1 names the MX host (reverse DNS: set it at your hosting provider)");
    // 8 domain records (MX, SPF, DKIM, DMARC, MTA-STS TXT and CNAME, TLS-RPT, the SRS domain's SPF), 2 addresses, 2 PTRs.
    expect(out.at(-1)).toBe("12 of 12 records published as expected");
  });

  test("`domain dns <name> --check` is the same report", async () => {
    await publishAll("check.test");
    const [viaDomain, viaDns] = await Promise.all([mf(["domain", "dns", "check.test", "--check"], withDns()), dnsCheck("check.test")]);
    expect(viaDomain).toEqual(viaDns);
    const [jsonDomain, jsonDns] = await Promise.all([mf(["domain", "dns", "check.test", "--check", "--json"], withDns()), dnsCheck("check.test", "--json")]);
    expect(JSON.parse(jsonDomain.stdout)).toEqual(JSON.parse(jsonDns.stdout));
  });

  test("a broken zone (wrong SPF, no DKIM, PTR naming another host): ✗ with what is published and the line to publish, exit 1", async () => {
    const zones = await publishAll("check.test");
    zones["check.test"]!.TXT = ["v=spf1 include:elsewhere.test -all", "site-verification=abc"];
    zones["elsewhere.test"] = { TXT: ["v=spf1 ip4:192.0.2.0/24 -all"] };
    delete zones["mailferry._domainkey.check.test"];
    zones[reverseName("127.0.0.1")] = { PTR: ["mail.other.test"] };
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(1);
    const out = lines(r.stdout);
    const spf = out.indexOf(`  ✗ SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias: does not authorize this server's address 127.0.0.1 (fail), ::1 (fail): "v=spf1 include:elsewhere.test -all"`);
    expect(spf).toBeGreaterThan(0);
    expect(out[spf + 1]).toBe('      check.test. 3600 IN TXT "v=spf1 mx -all"');
    const dkim = out.indexOf("  ✗ DKIM key (selector mailferry): not published");
    expect(out[dkim + 1]).toStartWith('      mailferry._domainkey.check.test. 3600 IN TXT "v=DKIM1; k=rsa; p=');
    const ptr = out.indexOf('  ✗ PTR of 127.0.0.1 names the MX host (reverse DNS: set it at your hosting provider): published differently: "mail.other.test."');
    expect(out[ptr + 1]).toBe(`      1.0.0.127.in-addr.arpa. 3600 IN PTR ${HOST}.`);
    expect(out).toContain("  ✓ PTR of ::1 names the MX host (reverse DNS: set it at your hosting provider)");
    expect(out.at(-1)).toBe("9 of 12 records published as expected; 3 required records are missing or wrong");

    const json = JSON.parse((await dnsCheck("check.test", "--json")).stdout);
    expect(json.ok).toBe(false);
    const wrong = json.records.filter((c: { status: string }) => c.status !== "ok");
    expect(wrong.map((c: { domain: string | null; type: string; level: string; status: string }) => `${c.domain} ${c.type} ${c.level} ${c.status}`)).toEqual([
      "check.test TXT required different",
      "check.test TXT required missing",
      "null PTR required different",
    ]);
    expect(wrong[2]).toMatchObject({ name: "1.0.0.127.in-addr.arpa.", value: `${HOST}.`, found: ["mail.other.test."], zone_line: `1.0.0.127.in-addr.arpa. 3600 IN PTR ${HOST}.` });
  });

  test("only recommended records missing: ! for them, exit 0", async () => {
    const zones = await publishAll("check.test");
    delete zones["_dmarc.check.test"];
    delete zones["_smtp._tls.check.test"];
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(0);
    const out = lines(r.stdout);
    expect(out).toContain("  ! DMARC: forwarded copies with a rewritten From are DKIM-signed and pass (recommended): not published");
    expect(out).toContain("  ! TLS-RPT: where senders report TLS problems (recommended): not published");
    expect(r.stdout).not.toContain("✗");
    expect(out.at(-1)).toBe("10 of 12 records published as expected; all required records are right, the others are recommended");
    expect(JSON.parse((await dnsCheck("check.test", "--json")).stdout).ok).toBe(true);
  });

  test("a host name without an address: ✗ with the A record to publish, exit 1", async () => {
    const zones = await publishAll("check.test");
    delete zones[HOST]!.A;
    delete zones[HOST]!.AAAA;
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(1);
    const out = lines(r.stdout);
    const address = out.indexOf("  ✗ A/AAAA: the MX host name has this server's address (then its PTR must name it): not published");
    expect(out[address + 1]).toBe(`      ${HOST}. 3600 IN A <public IP address of this server>`);
    expect(r.stdout).not.toContain("PTR of");
  });
});

describe("mailferry dns check (every domain)", () => {
  test("each managed domain, then the host records once; a record the domains share is checked once", async () => {
    expect((await mf(["domain", "add", "second.test"])).exitCode).toBe(0);
    await publishAll("check.test", "second.test");
    const r = await mf(["dns", "check"], withDns());
    expect(r.exitCode).toBe(0);
    const out = lines(r.stdout);
    // 8 records of check.test, 7 of second.test (the SRS domain's SPF is check.test's), 4 host records.
    expect(out.filter((l) => !l.startsWith(" "))).toEqual(["check.test", "second.test", `${HOST} (this server)`, "19 of 19 records published as expected"]);
    expect(out.filter((l) => l === `      ${HOST}. 3600 IN TXT "v=spf1 a -all"`)).toHaveLength(1);
  });

  test("usage errors exit 2; a domain that is not managed exits 1", async () => {
    expect((await mf(["dns"])).exitCode).toBe(2);
    expect((await mf(["dns", "check", "a.test", "b.test"])).exitCode).toBe(2);
    const unknown = await dnsCheck("unknown.test");
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain("domain unknown.test is not managed here");
  });
});

describe("the admin UI's domain page", () => {
  test("shows the same report, with this server's address and PTR, and checks again live", async () => {
    const app = await startMailferry({ dns: sandbox.dns, domains: ["ui.test"] });
    try {
      sandbox.dns.zones = { [TEST_HOSTNAME]: { A: ["127.0.0.1"] }, [reverseName("127.0.0.1")]: { PTR: [TEST_HOSTNAME] } };
      const admin = await createAdmin(app.appliance.store.db, "admin", "correct horse battery staple");
      const session = await createSession(app.appliance.store.db, admin.id, "127.0.0.1", "test");
      const get = (path: string) => fetch(`${app.httpUrl}${path}`, { headers: { cookie: `mf_session=${session.token}` } }).then((res) => res.text());
      const row = (mark: string, level: string, name: string, type: string) =>
        new RegExp(`<td class="[a-z]+" aria-label="${level}">${mark}</td><td class="mono">${name.replaceAll(".", "\\.")}</td><td>${type}</td>`);

      const page = await get("domains/ui.test");
      expect(page).toContain(`<h3>${TEST_HOSTNAME} (this server)</h3>`);
      expect(page).toMatch(row("✓", "ok, required", `${TEST_HOSTNAME}.`, "A"));
      expect(page).toMatch(row("✓", "ok, required", "1.0.0.127.in-addr.arpa.", "PTR"));
      expect(page).toMatch(row("✗", "missing, required", "ui.test.", "MX"));
      expect(page).toMatch(row("!", "missing, recommended", "_dmarc.ui.test.", "TXT"));
      // The host name is under no managed domain here: the server key's DKIM record is listed too.
      expect(page).toMatch(row("✗", "missing, required", `mailferry._domainkey.${TEST_HOSTNAME}.`, "TXT"));
      expect(page).toContain("2 of 11 records published as expected; 5 required records are missing or wrong");

      sandbox.dns.zones[reverseName("127.0.0.1")] = { PTR: ["mail.other.test"] };
      const again = await get("domains/ui.test/check");
      expect(again).toMatch(row("✗", "different, required", "1.0.0.127.in-addr.arpa.", "PTR"));
      expect(again).toContain("mail.other.test.");

      // The UI and the API judge SPF and DMARC as `dns check` does: an include of another provider passes, p=none too, with advice.
      Object.assign(sandbox.dns.zones, {
        "ui.test": { MX: [{ priority: 10, exchange: TEST_HOSTNAME }], TXT: ["v=spf1 mx include:_spf.google.test -all"] },
        "_spf.google.test": { TXT: ["v=spf1 ip4:198.51.100.0/24 ~all"] },
        "_dmarc.ui.test": { TXT: ["v=DMARC1; p=none"] },
      });
      const judged = await get("domains/ui.test/check");
      expect(judged).toMatch(row("✓", "ok, required", "ui.test.", "TXT"));
      expect(judged).toMatch(row("✓", "ok, recommended", "_dmarc.ui.test.", "TXT"));
      expect(judged).toContain("p=none only monitors; recommended: p=quarantine or p=reject, so receivers act on forged mail");
      const { token } = await createToken(app.appliance.store.db, "reader", "read");
      const api = (await fetch(`${app.httpUrl}api/v1/domains/ui.test/dns`, { headers: { authorization: `Bearer ${token}` } }).then((res) => res.json())) as { records: { name: string; type: string }[] };
      const byName = (name: string, type: string) => api.records.find((r) => r.name === name && r.type === type);
      expect(byName("ui.test.", "TXT")).toMatchObject({ status: "ok", mark: "✓", found: ["v=spf1 mx include:_spf.google.test -all"] });
      expect(byName("_dmarc.ui.test.", "TXT")).toMatchObject({ status: "ok", mark: "✓", level: "recommended", note: expect.stringContaining("p=none only monitors") });
    } finally {
      await app.stop();
    }
  });
});

describe("dns check judges what records mean, not their text", () => {
  const spfLine = (out: string[]) => out.find((l) => l.includes(" SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias"));
  const dmarcLine = (out: string[]) => out.find((l) => l.includes(" DMARC: forwarded copies"));

  test("an SPF that also includes another provider passes when its mx covers this server; DMARC p=none passes with a recommendation; exit 0", async () => {
    const zones = await publishAll("check.test");
    zones["check.test"]!.TXT = ["v=spf1 mx include:_spf.google.test -all"];
    zones["_spf.google.test"] = { TXT: ["v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:1::/48 ~all"] };
    zones["_dmarc.check.test"] = { TXT: ["v=DMARC1; p=none; rua=mailto:dmarc@check.test"] };
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(0);
    const out = lines(r.stdout);
    expect(spfLine(out)).toBe("  ✓ SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias");
    expect(dmarcLine(out)).toBe(
      "  ✓ DMARC: forwarded copies with a rewritten From are DKIM-signed and pass (recommended): p=none only monitors; recommended: p=quarantine or p=reject, so receivers act on forged mail",
    );
    const json = JSON.parse((await dnsCheck("check.test", "--json")).stdout);
    expect(json.ok).toBe(true);
    const dmarc = json.records.find((c: { name: string }) => c.name === "_dmarc.check.test.");
    expect(dmarc).toMatchObject({ status: "ok", found: ["v=DMARC1; p=none; rua=mailto:dmarc@check.test"], note: expect.stringContaining("p=none only monitors") });
  });

  test("an SPF that needs more than 10 DNS lookups fails with the reason, exit 1", async () => {
    const zones = await publishAll("check.test");
    // A chain of 11 includes: the 11th DNS-querying term is over the limit of RFC 7208 §4.6.4.
    zones["check.test"]!.TXT = ["v=spf1 include:l1.check.test -all"];
    for (let i = 1; i <= 11; i++) zones[`l${i}.check.test`] = { TXT: [i < 11 ? `v=spf1 include:l${i + 1}.check.test -all` : "v=spf1 mx -all"] };
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(1);
    expect(spfLine(lines(r.stdout))).toBe(
      "  ✗ SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias: receivers get an SPF error (permerror): it needs more than 10 DNS lookups (include, a, mx, ptr, exists, redirect count; RFC 7208 §4.6.4): merge or remove includes",
    );
    // Ten (the includes, the last of which names the addresses) are fine.
    zones["l10.check.test"] = { TXT: ["v=spf1 ip4:127.0.0.0/8 ip6:::1 -all"] };
    const ten = await dnsCheck("check.test");
    expect(spfLine(lines(ten.stdout))).toBe("  ✓ SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias");
    expect(ten.exitCode).toBe(0);
  });

  test("+all and ?all authorize this server but let anyone send as the domain: ! (a warning), exit 0", async () => {
    const zones = await publishAll("check.test");
    zones["check.test"]!.TXT = ["v=spf1 +all"];
    let r = await dnsCheck("check.test");
    expect(spfLine(lines(r.stdout))).toBe(
      "  ! SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias: authorizes this server, but also any other (+all): receivers cannot tell forged mail; end it with -all or ~all",
    );
    expect(r.exitCode).toBe(0);
    zones["check.test"]!.TXT = ["v=spf1 mx ?all"];
    r = await dnsCheck("check.test");
    expect(spfLine(lines(r.stdout))).toBe(
      "  ! SPF: the MX host (mx) may send for the domain: forwarded mail and mail sent as an alias: authorizes this server, but says nothing about others (?all, or no all): receivers cannot tell forged mail; end it with -all or ~all",
    );
    expect(r.exitCode).toBe(0);
  });

  test("an invalid DMARC record fails although DMARC is only recommended, exit 1", async () => {
    const zones = await publishAll("check.test");
    zones["_dmarc.check.test"] = { TXT: ["v=DMARC1; p=maybe"] };
    const r = await dnsCheck("check.test");
    expect(r.exitCode).toBe(1);
    expect(dmarcLine(lines(r.stdout))).toBe('  ✗ DMARC: forwarded copies with a rewritten From are DKIM-signed and pass (recommended): p= must be none, quarantine or reject: "v=DMARC1; p=maybe"');
    expect(JSON.parse((await dnsCheck("check.test", "--json")).stdout).records.find((c: { name: string }) => c.name === "_dmarc.check.test.").status).toBe("invalid");
  });
});

describe("a two-phase DKIM rotation as dns check sees it", () => {
  const dkimLines = async () => (await mf(["domain", "dkim", "rotate.test"])).stdout.split("\n").filter(Boolean);
  const DATE = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC";

  test("pending until DNS serves the record; then it signs, and the old record may go a week later", async () => {
    expect((await mf(["domain", "add", "rotate.test"])).exitCode).toBe(0);
    expect((await mf(["domain", "dkim-rotate", "rotate.test", "next"])).exitCode).toBe(0);
    const zones = await publishAll("rotate.test");
    delete zones["next._domainkey.rotate.test"];
    // DNS serves the old record only: the new key waits, and that is no failure.
    let r = await dnsCheck("rotate.test");
    expect(r.exitCode).toBe(0);
    expect(lines(r.stdout)).toContain("  ! DKIM key (selector next, pending: mailferry signs with it once DNS serves this record) (recommended): not published");
    expect((await dkimLines())[0]).toMatch(/^next {2}rsa {2}pending/);

    // DNS serves both: the check switches signing to the new key; the old one is retired.
    await publishAll("rotate.test");
    r = await dnsCheck("rotate.test");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`  ✓ DKIM key \\(selector mailferry retired on ${DATE}; its record can be removed after ${DATE}\\) \\(recommended\\)\\n`));
    expect(r.stdout).toContain("  ✓ DKIM key (selector next)\n");
    const keys = await dkimLines();
    expect(keys[0]).toMatch(/^next {2}rsa {2}signing/);
    expect(keys[1]).toMatch(/^mailferry {2}rsa {2}retired/);
    expect((await mf(["domain", "dkim-remove", "rotate.test", "mailferry"])).exitCode).toBe(1);

    // A week later: the record can go, and removing the key needs no force.
    const db = new Database(join(sandbox.dataDir, "mailferry.db"));
    db.run("UPDATE dkim_keys SET retired_at = retired_at - 8 * 86400000 WHERE selector = 'mailferry' AND domain_id = (SELECT id FROM domains WHERE name = 'rotate.test')");
    db.close();
    r = await dnsCheck("rotate.test");
    expect(r.stdout).toMatch(new RegExp(`  ✓ DKIM key \\(selector mailferry retired on ${DATE}; its record can be removed now, then run: mailferry domain dkim-remove rotate.test mailferry\\) \\(recommended\\)\\n`));
    expect((await mf(["domain", "dkim-remove", "rotate.test", "mailferry"])).exitCode).toBe(0);
  });
});
