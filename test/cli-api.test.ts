// The CLI reaches what the JSON API can do (tokens, destinations, addresses,
// the mail log, statistics, settings) through the same services: a real
// process on a data dir, its database inspected directly. The live DNS check
// (`domain dns --check`, `dns check`) is tested in dns-check.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DATABASE_FILE, openStore, type Store } from "../src/store/db.ts";
import { writeEvents } from "../src/store/events.ts";
import { cliSandbox } from "./support/smoke.ts";

// verify_destinations = all: every outside destination is mailed (the default, tokens, is tested in test/api/confirmations.test.ts).
const ENV = { MAILFERRY_HOSTNAME: "mx.cli.test", MAILFERRY_HTTP_PUBLIC_URL: "https://mail.cli.test/", MAILFERRY_VERIFY_DESTINATIONS: "all" };
const { sandbox, mf } = cliSandbox("cli-api", ENV);
const lines = (text: string) => text.trimEnd().split("\n");

/** The data dir's database, opened beside the CLI (WAL allows it). */
async function inDb<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(join(sandbox.dataDir, DATABASE_FILE));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const queuedFor = (address: string) => inDb((s) => s.db.selectFrom("outbox").innerJoin("outbox_recipients", "outbox_id", "id").selectAll("outbox").where("address", "=", address).execute());

describe("token", () => {
  test("create prints the token alone on the last line; list shows it; revoke marks it revoked", async () => {
    const created = await mf(["token", "create", "--name", "deploy", "--scope", "write"]);
    expect(created.exitCode).toBe(0);
    expect(lines(created.stdout).at(-1)).toMatch(/^mf_[A-Za-z0-9_-]{40,}$/);
    expect((await mf(["token", "list"])).stdout).toMatch(/^deploy {2}write {2}active {2}created \d{4}-.* last used never\n$/);

    expect(await mf(["token", "revoke", "deploy"])).toMatchObject({ exitCode: 0, stdout: "revoked token deploy\n" });
    expect((await mf(["token", "list"])).stdout).toMatch(/^deploy {2}write {2}revoked \d{4}-/);
    const [listed] = JSON.parse((await mf(["token", "list", "--json"])).stdout);
    expect(listed).toMatchObject({ name: "deploy", scope: "write" });
    expect(listed.revoked_at).toMatch(/^\d{4}-/);
    expect(JSON.stringify(listed)).not.toContain("mf_");

    expect((await mf(["token", "revoke", "deploy"])).exitCode).toBe(1);
    const badScope = await mf(["token", "create", "--name", "x", "--scope", "root"]);
    expect(badScope.exitCode).toBe(2);
    expect(badScope.stderr).toContain("scope must be one of read, write, admin");
    expect((await mf(["token", "create", "--name", "x"])).exitCode).toBe(2);
  });
});

describe("destination", () => {
  test("add queues a verification mail (the link at the public URL) and lists it pending; resend, remove", async () => {
    const added = await mf(["destination", "add", "Me@Gmail.Test"]);
    expect(added).toMatchObject({ exitCode: 0, stdout: "verification mail queued for me@gmail.test: mail is forwarded there once its owner confirms\n" });
    const [mail] = await queuedFor("me@gmail.test");
    const raw = Buffer.from(mail!.raw).toString();
    expect(raw).toContain("Subject: Confirm forwarding to me@gmail.test");
    expect(raw.replace(/=\r?\n/g, "")).toMatch(/https:\/\/mail\.cli\.test\/verify\/[A-Za-z0-9_.-]+/);
    expect((await mf(["destination", "list"])).stdout).toMatch(/^me@gmail\.test {2}pending {3}link sent \d{4}-/m);
    expect(JSON.parse((await mf(["destination", "list", "--json"])).stdout)).toEqual([expect.objectContaining({ address: "me@gmail.test", status: "pending", verified_at: null })]);

    // Within a minute no second mail: add says so, resend refuses.
    expect((await mf(["destination", "add", "me@gmail.test"])).stdout).toBe("me@gmail.test is pending: a verification mail went there less than a minute ago\n");
    const resend = await mf(["destination", "resend", "me@gmail.test"]);
    expect(resend.exitCode).toBe(1);
    expect(resend.stderr).toContain("less than a minute ago");
    expect(await queuedFor("me@gmail.test")).toHaveLength(1);

    expect((await mf(["destination", "remove", "me@gmail.test"])).exitCode).toBe(0);
    expect((await mf(["destination", "list"])).stdout).toBe("(no destinations)\n");
    expect((await mf(["destination", "remove", "me@gmail.test"])).exitCode).toBe(1);
    expect((await mf(["destination", "add", "not an address"])).exitCode).toBe(2);
  });

  test("an address on a managed domain is refused (its aliases route it)", async () => {
    await mf(["domain", "add", "managed.test"]);
    const r = await mf(["destination", "add", "me@managed.test"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("is on a managed domain");
  });

  test("alias add registers its recipient and mails it; with --json the notice goes to stderr", async () => {
    await mf(["domain", "add", "notify.test"]);
    const r = await mf(["alias", "add", "notify.test", "hi", "friend@elsewhere.test", "--json"]);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ pattern: "hi", recipients: ["friend@elsewhere.test"] });
    expect(r.stderr).toBe(
      "waiting for confirmation: friend@elsewhere.test (verify_destinations = all: its owner confirms by replying to the verification mail (or with its code on the Destinations page, or its link)); verification mail queued\n",
    );
    expect(await queuedFor("friend@elsewhere.test")).toHaveLength(1);
    const computed = await mf(["alias", "add", "notify.test", "/^(.+)$/", "$1@elsewhere.test"]);
    expect(computed.stdout).toContain("waiting for confirmation: $1@elsewhere.test (verify_destinations = all: each address it builds must be confirmed by its owner before mail reaches it");
  });
});

describe("address create", () => {
  test("--random-subdomain makes name@<8 characters>.<domain>; a random name without --name", async () => {
    await mf(["domain", "add", "addr.test"]);
    const named = await mf(["address", "create", "addr.test", "me@elsewhere.test", "--name", "shop", "--random-subdomain"]);
    expect(named.exitCode).toBe(0);
    expect(lines(named.stdout)[0]).toMatch(/^shop@[a-z0-9]{8}\.addr\.test$/);
    const unnamed = (await mf(["address", "create", "addr.test", "me@elsewhere.test", "--random-subdomain"])).stdout;
    expect(lines(unnamed)[0]).toMatch(/^[a-z0-9]{10}@[a-z0-9]{8}\.addr\.test$/);
    const plain = await mf(["address", "create", "addr.test", "me@elsewhere.test", "--name", "plain", "--no-random-subdomain", "--json"]);
    expect(JSON.parse(plain.stdout)).toMatchObject({ address: "plain@addr.test", alias: { pattern: "plain", subdomain: "" } });
    expect((await mf(["address", "create", "addr.test"])).exitCode).toBe(2);
    expect((await mf(["address", "create", "addr.test", "x@y.test", "--random-subdomain", "--no-random-subdomain"])).exitCode).toBe(2);
  });

  test("--subdomain is refused until the domain accepts subdomains", async () => {
    const refused = await mf(["address", "create", "addr.test", "me@elsewhere.test", "--name", "bob", "--subdomain", "team"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("subdomain matching is off");
    expect((await mf(["domain", "set", "addr.test", "accept_subdomains=on"])).exitCode).toBe(0);
    const created = await mf(["address", "create", "addr.test", "me@elsewhere.test", "--name", "bob", "--subdomain", "team"]);
    expect(created.exitCode).toBe(0);
    // The address first; then that me@elsewhere.test (mailed in the test above) still waits for its owner.
    expect(lines(created.stdout)).toEqual(["bob@team.addr.test", expect.stringMatching(/^waiting for confirmation: me@elsewhere\.test \(verify_destinations = all/)]);
    expect((await mf(["alias", "list", "team.addr.test"])).stdout).toBe("team.addr.test  bob -> me@elsewhere.test\n");
  });
});

describe("log and stats", () => {
  beforeAll(async () => {
    const base = { session_id: "s1", remote_ip: "192.0.2.7", mail_from: "alice@sender.test", domain: "log.test", message_id: null, subject: null, headers: null, detail: null };
    await inDb(async (s) => {
      await writeEvents(s.db, [
        { ...base, at: Date.now() - 1000, stage: "data", code: 250, enhanced: "2.0.0", text: "Forwarded", recipients: JSON.stringify(["hello@log.test"]) },
        { ...base, at: Date.now(), stage: "rcpt", code: 550, enhanced: "5.1.1", text: "No such user", recipients: JSON.stringify(["nobody@log.test"]) },
      ]);
    });
  });

  test("log: one line per event, newest first; filters; --json", async () => {
    const all = lines((await mf(["log"])).stdout);
    expect(all).toHaveLength(2);
    const [rejected, accepted] = all as [string, string];
    expect(rejected).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}rcpt {6}550 5\.1\.1 No such user {2}from <alice@sender\.test> {2}to nobody@log\.test$/);
    expect(accepted).toContain("data      250 2.0.0 Forwarded  from <alice@sender.test>  to hello@log.test");
    expect(lines((await mf(["log", "--verdict", "accepted"])).stdout)).toEqual([accepted]);
    expect(lines((await mf(["log", "--recipient", "nobody"])).stdout)).toEqual([rejected]);
    expect(lines((await mf(["log", "--limit", "1"])).stdout)).toEqual([rejected]);
    expect((await mf(["log", "--domain", "other.test"])).stdout).toBe("(no events)\n");
    expect((await mf(["log", "--since", "2999-01-01"])).stdout).toBe("(no events)\n");
    const [newest] = JSON.parse((await mf(["log", "--json", "--sender", "alice"])).stdout);
    expect(newest).toMatchObject({ stage: "rcpt", code: 550, recipients: ["nobody@log.test"] });
    expect((await mf(["log", "--verdict", "bounced"])).exitCode).toBe(2);
    expect((await mf(["log", "--since", "yesterday"])).exitCode).toBe(2);
    expect((await mf(["log", "--limit", "0"])).exitCode).toBe(2);
  });

  test("stats: counts per day and category, of all domains or one", async () => {
    const stats = JSON.parse((await mf(["stats", "--days", "2", "--json"])).stdout);
    expect(stats.days).toHaveLength(2);
    expect(stats.series.forwarded).toEqual([0, 1]);
    expect(stats.series.rejected).toEqual([0, 1]);
    const table = lines((await mf(["stats", "--days", "1", "--domain", "LOG.test"])).stdout);
    expect(table[0]).toMatch(/^day {9}forwarded {2}rejected/);
    expect(table[1]).toMatch(/^\d{4}-\d\d-\d\d {10}1 {9}1 /);
    expect(table[2]).toMatch(/^total {15}1 {9}1 /);
    expect(JSON.parse((await mf(["stats", "--domain", "other.test", "--json"])).stdout).series.forwarded.every((n: number) => n === 0)).toBe(true);
    expect((await mf(["stats", "--days", "999"])).exitCode).toBe(2);
  });
});

describe("config set", () => {
  const file = () => join(sandbox.dataDir, "config.toml");

  test("writes config.toml and prints what changed; key= returns to the default", async () => {
    const r = await mf(["config", "set", "greylist.delay=2m", "api.rate_limit=30"]);
    expect(r.exitCode).toBe(0);
    expect(lines(r.stdout).slice(0, 2)).toEqual(["greylist.delay: 5m -> 2m", "api.rate_limit: 600 -> 30"]);
    expect(readFileSync(file(), "utf8")).toContain('[greylist]\ndelay = "2m"');
    expect((await mf(["config", "check"])).stdout).toMatch(/greylist\.delay\s+2m\s+\[greylist\] delay in /);
    expect(lines((await mf(["config", "set", "greylist.delay="])).stdout)[0]).toBe("greylist.delay: 2m -> 5m");
    expect(readFileSync(file(), "utf8")).not.toContain("[greylist]");
  });

  test("a bad value exits 2 with the message and leaves the file as it was; unknown keys are refused", async () => {
    const before = readFileSync(file(), "utf8");
    const bad = await mf(["config", "set", "api.rate_limit=10", "smtp.port=twenty"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('"twenty": must be an integer');
    expect(readFileSync(file(), "utf8")).toBe(before);
    const unknown = await mf(["config", "set", "smtp.colour=blue"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain("unknown setting: smtp.colour");
    expect((await mf(["config", "set", "greylist.delay"])).exitCode).toBe(2);
  });

  test("says when the environment still wins over the file", async () => {
    const r = await mf(["config", "set", "smtp.port=2600"], { MAILFERRY_SMTP_PORT: "2700" });
    expect(lines(r.stdout)[0]).toBe("smtp.port: 2700 (unchanged); MAILFERRY_SMTP_PORT overrides config.toml");
  });
});

describe("audit", () => {
  test("changes made with the CLI are audited as cli", async () => {
    await mf(["domain", "add", "audit.test"]);
    await mf(["alias", "add", "audit.test", "hello", "someone@elsewhere.test"]);
    await mf(["alias", "remove", "audit.test", "HELLO"]);
    await mf(["allow", "add", "198.51.100.7"]);
    await mf(["deny", "add", "spam.audit.test"]);
    await mf(["domain", "webhook-key", "audit.test", "--rotate"]);
    const rows = await inDb((s) => s.db.selectFrom("audit_log").select(["actor", "ip", "action", "target"]).where("target", "in", ["audit.test", "hello@audit.test", "198.51.100.7", "spam.audit.test"]).orderBy("id").execute());
    expect(rows.map((r) => `${r.action} ${r.target}`)).toEqual(["domain.add audit.test", "alias.add hello@audit.test", "alias.remove hello@audit.test", "allow.add 198.51.100.7", "deny.add spam.audit.test", "domain.webhook_key.rotate audit.test"]);
    expect(new Set(rows.map((r) => `${r.actor} ${r.ip}`))).toEqual(new Set(["cli local"]));
    const actions = new Set((await inDb((s) => s.db.selectFrom("audit_log").select("action").where("actor", "=", "cli").execute())).map((r) => r.action));
    for (const action of ["token.create", "token.revoke", "destination.add", "destination.remove", "address.create", "domain.settings", "settings.update"]) expect(actions).toContain(action);
  });
});
