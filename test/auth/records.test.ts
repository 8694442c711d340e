// `mailferry domain dns`: the exact records (golden file), each one valid.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy, resolvePolicy } from "mailauth/lib/mta-sts";
import getDmarcRecord from "mailauth/lib/dmarc/get-dmarc-record";
import { spf } from "mailauth/lib/spf";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import { Database } from "bun:sqlite";
import { createResolver } from "../../src/dns/resolver.ts";
import { type DnsRecord, mtaStsId } from "../../src/auth/records.ts";
import { signingKey } from "../../src/store/dkim-keys.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { run } from "../support/smoke.ts";

const root = join(import.meta.dir, "../..");
const cli = [process.execPath, join(root, "src/main.ts")];
const fixtures = join(import.meta.dir, "../fixtures");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mailferry-records-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("`mailferry domain dns example.test` prints exactly the golden records", async () => {
  const env = { MAILFERRY_DATA_DIR: dir, MAILFERRY_HOSTNAME: "mx.mailferry.test" };
  expect((await run([...cli, "domain", "add", "example.test"], { cwd: dir, env })).exitCode).toBe(0);
  // The keys are random; the golden file was made with this public key (the server key's too, made here before its first use).
  const publicKey = readFileSync(join(fixtures, "dkim-public-key.txt"), "utf8").trim();
  const db = new Database(join(dir, "mailferry.db"));
  db.run("UPDATE dkim_keys SET public_key = ?", [publicKey]);
  db.run("INSERT INTO server_dkim_key (id, selector, algorithm, private_key, public_key, created_at) VALUES (1, 'mailferry', 'rsa', 'unused', ?, 0)", [publicKey]);
  db.close();
  const out = await run([...cli, "domain", "dns", "example.test"], { cwd: dir, env });
  expect(out.exitCode).toBe(0);
  expect(out.stdout).toBe(readFileSync(join(fixtures, "domain-dns-example.test.golden"), "utf8"));
  const lines = out.stdout.split("\n").filter((l) => l && !l.startsWith(";"));
  for (const line of lines) {
    expect(line).toMatch(/^\S+\. 3600 IN (MX|TXT|CNAME) /);
    if (line.includes(" TXT ")) for (const s of line.match(/"((?:[^"\\]|\\.)*)"/g)!) expect(Buffer.byteLength(s) - 2).toBeLessThanOrEqual(255);
  }
  const json = JSON.parse((await run([...cli, "domain", "dns", "example.test", "--json"], { cwd: dir, env })).stdout) as DnsRecord[];
  expect(json.map((r) => r.type)).toEqual(["MX", "TXT", "TXT", "TXT", "TXT", "CNAME", "TXT", "TXT", "TXT"]);
});

describe("the published records work", () => {
  let dns: DnsServer;
  let mf: TestMailferry;
  let records: DnsRecord[];
  const resolver = () => createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000 }).forMailauth;

  beforeAll(async () => {
    dns = await startDnsServer({ "mx.mailferry.test": { A: ["127.0.0.1"] } });
    mf = await startMailferry({ dns, domains: ["example.test"] });
    const out = await run([...cli, "domain", "dns", "example.test", "--json"], { cwd: mf.dataDir, env: { MAILFERRY_DATA_DIR: mf.dataDir, MAILFERRY_HOSTNAME: "mx.mailferry.test" } });
    records = JSON.parse(out.stdout);
    // Publish them in the test DNS, as the domain owner would.
    for (const r of records) {
      const name = r.name.replace(/\.$/, "");
      const zone = (dns.zones[name] ??= {});
      if (r.type === "TXT") (zone.TXT ??= []).push(r.value);
      if (r.type === "MX") (zone.MX ??= []).push({ priority: Number(r.value.split(" ")[0]), exchange: r.value.split(" ")[1]!.replace(/\.$/, "") });
      if (r.type === "CNAME") zone.CNAME = r.value.replace(/\.$/, "");
    }
  });
  afterAll(async () => {
    await mf.stop();
    await dns.close();
  });

  const value = (name: string, prefix: string) => records.find((r) => r.name === name && r.value.startsWith(prefix))!.value;

  test("SPF parses and authorises the MX host", async () => {
    const result = await spf({ sender: "someone@example.test", ip: "127.0.0.1", helo: "mx.mailferry.test", mta: "check.test", resolver: resolver() });
    expect(result.status.result).toBe("pass");
    const srs = await spf({ sender: "SRS0=x@mx.mailferry.test", ip: "127.0.0.1", helo: "mx.mailferry.test", mta: "check.test", resolver: resolver() });
    expect(srs.status.result).toBe("pass");
  });

  test("the DKIM key parses, and mailferry's signatures verify with it", async () => {
    const p = /p=([A-Za-z0-9+/=]+)$/.exec(value("mailferry._domainkey.example.test.", "v=DKIM1"))![1]!;
    expect(createPublicKey({ key: Buffer.from(p, "base64"), format: "der", type: "spki" }).asymmetricKeyDetails?.modulusLength).toBe(2048);
    const key = (await signingKey(mf.appliance.store.db, "example.test"))!;
    const message = "From: a@example.test\r\nTo: b@x.test\r\nSubject: k\r\n\r\nbody\r\n";
    const sig = { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey };
    const { signatures } = await dkimSign(message, { ...sig, signatureData: [sig] });
    const verified = await dkimVerify(signatures + message, { resolver: resolver() });
    expect(verified.results[0]!.status.result).toBe("pass");
  });

  test("DMARC parses", async () => {
    const record = await getDmarcRecord("example.test", resolver());
    expect(record).toMatchObject({ v: "DMARC1", p: "quarantine" });
  });

  test("MTA-STS: the TXT id matches the policy the HTTP server serves for mta-sts.<domain>", async () => {
    const id = await resolvePolicy("example.test", { resolver: resolver() });
    const res = await fetch(`${mf.httpUrl}.well-known/mta-sts.txt`, { headers: { host: "mta-sts.example.test" } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(parsePolicy(text)).toMatchObject({ mode: "testing", mx: ["mx.mailferry.test"] });
    expect(id).toBe(mtaStsId(text));
    expect((await fetch(`${mf.httpUrl}.well-known/mta-sts.txt`, { headers: { host: "mta-sts.unmanaged.test" } })).status).toBe(404);
  });

  test("TLS-RPT names a reporting address", () => {
    expect(value("_smtp._tls.example.test.", "v=TLSRPTv1")).toMatch(/^v=TLSRPTv1; rua=mailto:[^@\s]+@example\.test$/);
  });
});
