// The address-creation API (cloudflare_temp_email behaviour): random and
// named subdomains, the domain's follow-the-configuration default, label
// validation, and the new address receiving mail end to end.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;
let token: string;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.2"] } });
  mf = await startMailferry({ dns, domains: ["example.test"], env: { MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
  token = (await createToken(mf.appliance.store.db, "addresses", "write")).token;
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${mf.httpUrl}api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const create = (body: Record<string, unknown>) => api("POST", "/addresses", { domain: "example.test", targets: ["me@dest.test"], ...body });

test("a random subdomain of the configured length; the new address receives mail end to end", async () => {
  await api("PATCH", "/domains/example.test", { random_subdomain_length: 5 });
  const created = await create({ name: "shop", random_subdomain: true });
  expect(created.status).toBe(201);
  expect(created.body.address).toMatch(/^shop@[a-z0-9]{5}\.example\.test$/);
  expect(created.body.alias).toMatchObject({ domain: "example.test", name: "shop", recipients: ["me@dest.test"] });
  expect(created.body.alias.subdomain).toHaveLength(5);

  await sendMail(mf.smtpPort, { from: "alice@sender.test", to: created.body.address, subject: "to the random address" });
  const [mail] = await sink.waitForMessages(1);
  expect(mail!.rcptTo).toEqual(["me@dest.test"]);
  expect(mail!.raw.toString()).toContain("Subject: to the random address");
  expect(mail!.raw.toString()).toContain(`X-Original-To: ${created.body.address}`);

  // Only that address: the same name on the domain, or another name on the subdomain, is not it.
  const other = created.body.address.replace("shop@", "other@");
  await expect(sendMail(mf.smtpPort, { from: "alice@sender.test", to: other })).rejects.toMatchObject({ responseCode: 550 });
  await expect(sendMail(mf.smtpPort, { from: "alice@sender.test", to: "shop@example.test" })).rejects.toMatchObject({ responseCode: 550 });
});

test("the length is honoured from 1 to 63", async () => {
  for (const length of [1, 63]) {
    await api("PATCH", "/domains/example.test", { random_subdomain_length: length });
    const created = await create({ random_subdomain: true });
    const sub = created.body.address.split("@")[1].replace(/\.example\.test$/, "");
    expect(sub).toMatch(new RegExp(`^[a-z0-9]{${length}}$`));
  }
  await api("PATCH", "/domains/example.test", { random_subdomain_length: 8 });
});

test("without a name the local part is random", async () => {
  const created = await create({ random_subdomain: false });
  expect(created.body.address).toMatch(/^[a-z0-9]{10}@example\.test$/);
});

test("random_subdomain omitted: the domain's setting, which follows the configuration until set", async () => {
  expect((await create({ name: "plain1" })).body.address).toBe("plain1@example.test");
  mf.appliance.config.addresses.randomSubdomain = true;
  try {
    expect((await create({ name: "cfg" })).body.address).toMatch(/^cfg@[a-z0-9]{8}\.example\.test$/);
    await api("PATCH", "/domains/example.test", { random_subdomain: false });
    expect((await create({ name: "plain2" })).body.address).toBe("plain2@example.test");
  } finally {
    mf.appliance.config.addresses.randomSubdomain = false;
  }
  await api("PATCH", "/domains/example.test", { random_subdomain: true });
  expect((await create({ name: "dom" })).body.address).toMatch(/^dom@[a-z0-9]{8}\.example\.test$/);
  expect((await create({ name: "asked", random_subdomain: false })).body.address).toBe("asked@example.test");
  await api("PATCH", "/domains/example.test", { random_subdomain: null });
});

test("an explicit subdomain is refused while subdomain matching is off and accepted when it is on", async () => {
  const refused = await create({ name: "dev", subdomain: "dev.team" });
  expect(refused.status).toBe(422);
  expect(refused.body.error.field).toBe("subdomain");

  await api("PATCH", "/domains/example.test", { accept_subdomains: true });
  const created = await create({ name: "dev", subdomain: "dev.team" });
  expect(created.status).toBe(201);
  expect(created.body.address).toBe("dev@dev.team.example.test");
  const before = sink.messages.length;
  await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "dev@dev.team.example.test", subject: "named subdomain" });
  const arrived = await sink.waitForMessages(before + 1);
  expect(arrived.at(-1)!.raw.toString()).toContain("Subject: named subdomain");
  await api("PATCH", "/domains/example.test", { accept_subdomains: null });
});

test("bad labels, over-long names and contradictions are 422 naming the field; nothing is created", async () => {
  await api("PATCH", "/domains/example.test", { accept_subdomains: true });
  const cases: [Record<string, unknown>, string][] = [
    [{ subdomain: "a".repeat(64) }, "subdomain"],
    [{ subdomain: "te_am" }, "subdomain"],
    [{ subdomain: "-team" }, "subdomain"],
    [{ subdomain: "team..dev" }, "subdomain"],
    [{ subdomain: Array.from({ length: 5 }, () => "a".repeat(60)).join(".") }, "subdomain"],
    [{ subdomain: "team", random_subdomain: true }, "random_subdomain"],
    [{ name: "not valid" }, "name"],
    [{ domain: "elsewhere.test" }, "domain"],
    [{ targets: ["nobody"] }, "targets"],
  ];
  const count = async () => (await mf.appliance.store.db.selectFrom("aliases").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n;
  const before = await count();
  for (const [body, field] of cases) {
    const a = await create(body);
    expect([a.status, a.body.error.field]).toEqual([422, field]);
  }
  expect((await create({ targets: [] })).status).toBe(400);
  expect(await count()).toBe(before);
  await api("PATCH", "/domains/example.test", { accept_subdomains: null });
});
