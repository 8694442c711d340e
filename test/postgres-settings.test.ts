// Settings changed at run time on two `mailferry serve` nodes on one PostgreSQL
// (docs/multi-node.md): a shared setting changed through one node's API is kept
// in the database and changes the other node's SMTP answers within seconds; a
// node-local one (hostname) stays in that node's config.toml; `config set` with
// MAILFERRY_DATABASE_URL writes the database; a node started later reads it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Store } from "../src/store/db.ts";
import { readSharedSettings } from "../src/store/shared-settings.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { signedInAdmin } from "./support/mailferry.ts";
import { nodeCli, type ServeProcess, startServe } from "./support/serve-process.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { SmtpTalk } from "./support/smtp-client.ts";
import { waitUntil } from "./support/wait.ts";

let postgres: Postgres;
let dns: DnsServer;
let sink: Sink;
let store: Store;
let databaseUrl: string;
let token: string;
const dirs = [0, 1].map((n) => mkdtempSync(join(tmpdir(), `mailferry-settings-node-${n}-`)));
const nodes: ServeProcess[] = [];
const hostnameOf = (node: number) => `mx${node + 1}.multi.test`;

// The host name comes from each node's config.toml, not the environment (which would win over any change).
function env(node: number): Record<string, string> {
  const { MAILFERRY_HOSTNAME: _fromConfigToml, ...rest } = nodeEnv({ dataDir: dirs[node]!, databaseUrl, hostname: hostnameOf(node), dnsAddress: dns.address, sinkPort: sink.port });
  return rest;
}

const cli = (node: number, args: string[]) => nodeCli({ dataDir: dirs[node]!, env: env(node) }, args);

/** What afterAll undoes, last started first. */
const started: (() => Promise<unknown>)[] = [() => Promise.all(dirs.map((dir) => rmSync(dir, { recursive: true, force: true })))];

beforeAll(async () => {
  postgres = await startPostgres();
  started.push(() => postgres.stop());
  databaseUrl = await postgres.createDatabase();
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  started.push(() => sink.close());
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: [sink.host] } });
  started.push(() => dns.close());
  for (const node of [0, 1]) writeFileSync(join(dirs[node]!, "config.toml"), `hostname = "${hostnameOf(node)}"\n`);
  await cli(0, ["domain", "add", "multi.test"]);
  await cli(0, ["alias", "add", "multi.test", "hello", "someone@dest.test"]);
  token = (await cli(0, ["token", "create", "--name", "settings", "--scope", "admin"])).trim().split("\n").pop()!;
  for (const node of [0, 1]) nodes.push(await startServe(env(node)));
  started.push(() => Promise.all(nodes.map((node) => node.kill())));
  store = await openDatabase(databaseUrl);
  started.push(() => store.close());
}, 120_000);

afterAll(async () => {
  for (const undo of started.reverse()) await undo();
});

/** The banner and the reply to RCPT TO:<hello@multi.test> on `node`, in a new session from `sender`. */
async function rcpt(node: number, sender = "alice@sender.test"): Promise<{ banner: string; code: number }> {
  const { talk, greeting } = await SmtpTalk.connect(nodes[node]!.smtpPort);
  try {
    for (const command of ["EHLO client.test", `MAIL FROM:<${sender}>`]) expect((await talk.send(command)).code).toBe(250);
    return { banner: greeting.text, code: (await talk.send("RCPT TO:<hello@multi.test>")).code };
  } finally {
    talk.close();
  }
}

async function api(node: number, method: "GET" | "PATCH", body?: Record<string, string>): Promise<Record<string, { value: string; origin: string }>> {
  const res = await fetch(`${nodes[node]!.httpUrl}/api/v1/settings`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body && JSON.stringify(body) });
  expect(res.status).toBe(200);
  const { items } = (await res.json()) as { items: { key: string; value: string; origin: string }[] };
  return Object.fromEntries(items.map((item) => [item.key, { value: item.value, origin: item.origin }]));
}

test("greylisting changed through node 1's API changes node 2's SMTP answer within seconds", async () => {
  // The default delay (5 minutes) greylists a first attempt on either node.
  expect((await rcpt(1)).code).toBe(450);
  const onFirst = await api(0, "PATCH", { "greylist.delay": "0" });
  expect(onFirst["greylist.delay"]).toEqual({ value: "0", origin: "database" });
  expect(await readSharedSettings(store.db)).toEqual({ "greylist.delay": "0" });
  const took = await waitUntil("node 2 stops greylisting", 5_000, async () => (await rcpt(1)).code === 250);
  console.log(`greylisting off on the other node after ${took} ms`);
  expect((await api(1, "GET"))["greylist.delay"]).toEqual({ value: "0", origin: "database" });
  // The settings page of the other node says where changes go, and where this value came from.
  const page = await (await fetch(`${nodes[1]!.httpUrl}/settings`, { headers: { cookie: (await signedInAdmin(store.db)).cookie } })).text();
  expect(page).toContain("Saved to the database, for every node on it");
  expect(page).toMatch(/greylist\.delay<\/td>\s*<td[^>]*>0<\/td>\s*<td[^>]*>database<\/td>/);
}, 30_000);

test("the host name changed on node 1 stays in its config.toml; node 2 keeps its own", async () => {
  const onFirst = await api(0, "PATCH", { hostname: "renamed.multi.test" });
  expect(onFirst.hostname!.value).toBe("renamed.multi.test");
  expect(onFirst.hostname!.origin).toContain(join(dirs[0]!, "config.toml"));
  expect(readFileSync(join(dirs[0]!, "config.toml"), "utf8")).toContain(`hostname = "renamed.multi.test"`);
  expect(Object.keys(await readSharedSettings(store.db))).not.toContain("hostname");
  await Bun.sleep(2_000);
  expect((await api(1, "GET")).hostname).toEqual({ value: hostnameOf(1), origin: `hostname in ${join(dirs[1]!, "config.toml")}` });
}, 30_000);

test("`config set` with MAILFERRY_DATABASE_URL writes the database, and running nodes apply it", async () => {
  const out = await cli(1, ["config", "set", "limits.connections_per_hour=7"]);
  expect(out).toContain("limits.connections_per_hour: 100 -> 7");
  expect(out).toContain("running nodes apply");
  expect((await readSharedSettings(store.db))["limits.connections_per_hour"]).toBe("7");
  expect(readFileSync(join(dirs[1]!, "config.toml"), "utf8")).not.toContain("connections_per_hour");
  await waitUntil("node 1 shows the value from the database", 5_000, async () => (await api(0, "GET"))["limits.connections_per_hour"]?.value === "7");
  expect(await cli(0, ["config", "check"])).toMatch(/limits\.connections_per_hour\s+7\s+database/);
}, 30_000);

test("a node started later reads the shared values at start, and its own host name from its config.toml", async () => {
  await nodes[1]!.kill();
  nodes[1] = await startServe(env(1));
  // A sender never seen passes at once: the delay 0 from the database applied at start (the default would answer 450).
  const { banner, code } = await rcpt(1, "bob@elsewhere.test");
  expect(banner).toStartWith(hostnameOf(1));
  expect(code).toBe(250);
  expect((await api(1, "GET"))["limits.connections_per_hour"]).toEqual({ value: "7", origin: "database" });
}, 60_000);
