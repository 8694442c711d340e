// The mailferry CLI as a user runs it: a real process, exit codes, output.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, cliSandbox, run, smokeTest } from "./support/smoke.ts";

const root = join(import.meta.dir, "..");
const { sandbox, mf } = cliSandbox("cli");

describe("commands and exit codes", () => {
  test("version", async () => {
    const r = await mf(["version"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^mailferry \d+\.\d+\.\d+ \(bun \d/);
  });

  test("help exits 0; no command or an unknown one is a usage error (2)", async () => {
    expect((await mf(["--help"])).exitCode).toBe(0);
    expect((await mf(["--help"])).stdout).toContain("domain add <name>");
    expect((await mf([])).exitCode).toBe(2);
    const unknown = await mf(["frobnicate"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain("unknown command: frobnicate");
    expect((await mf(["version", "--no-such-flag"])).exitCode).toBe(2);
    expect((await mf(["domain"])).exitCode).toBe(2);
    expect((await mf(["domain", "add"])).exitCode).toBe(2);
    expect((await mf(["config", "frob"])).exitCode).toBe(2);
  });

  test("domain add, list (text and --json), remove", async () => {
    expect(await mf(["domain", "add", "Example.TEST"])).toMatchObject({ exitCode: 0, stdout: "added example.test\n" });
    expect((await mf(["domain", "add", "other.test"])).exitCode).toBe(0);
    expect((await mf(["domain", "list"])).stdout).toBe("example.test\nother.test\n");
    const listed = JSON.parse((await mf(["domain", "list", "--json"])).stdout);
    expect(listed.map((d: { name: string }) => d.name)).toEqual(["example.test", "other.test"]);
    expect(await mf(["domain", "remove", "other.test"])).toMatchObject({ exitCode: 0, stdout: "removed other.test\n" });
    expect((await mf(["domain", "list"])).stdout).toBe("example.test\n");
  });

  test("domain errors: invalid name is a usage error (2); duplicate or unknown is a runtime error (1)", async () => {
    const invalid = await mf(["domain", "add", "not a domain"]);
    expect(invalid.exitCode).toBe(2);
    expect(invalid.stderr).toContain("is not a valid domain name");
    await mf(["domain", "add", "dup.test"]);
    const dup = await mf(["domain", "add", "dup.test"]);
    expect(dup.exitCode).toBe(1);
    expect(dup.stderr).toContain("already exists");
    expect((await mf(["domain", "remove", "never.test"])).exitCode).toBe(1);
  });

  test("alias add, list, test, export, remove; domain set", async () => {
    await mf(["domain", "add", "aliases.test"]);
    // Under verify_destinations = all even the CLI's destinations wait for their owners, and alias add says so.
    const all = { MAILFERRY_VERIFY_DESTINATIONS: "all" };
    const waiting = (address: string) => `waiting for confirmation: ${address} (verify_destinations = all: its owner confirms by replying to the verification mail (or with its code on the Destinations page, or its link)); verification mail queued\n`;
    expect(await mf(["alias", "add", "aliases.test", "hello", "a@x.test", "b@x.test"], all)).toMatchObject({
      exitCode: 0,
      stdout: `added aliases.test  hello -> a@x.test, b@x.test\n${waiting("a@x.test")}${waiting("b@x.test")}`,
    });
    expect((await mf(["alias", "add", "aliases.test", "/^(sales|info)$/", "team+$1@x.test"])).exitCode).toBe(0);
    expect((await mf(["alias", "add", "aliases.test", "old", "--disabled", "hard", "--description", "left the company"])).exitCode).toBe(0);
    expect((await mf(["alias", "list", "aliases.test"])).stdout).toBe(
      "aliases.test  hello -> a@x.test, b@x.test\naliases.test  /^(sales|info)$/ -> team+$1@x.test\naliases.test  old -> (none)  [disabled: hard]\n",
    );
    // Until a@x.test and b@x.test confirm, a server in that mode defers mail for hello, and alias test says so;
    // under the default (tokens) the CLI's word was enough.
    expect((await mf(["alias", "test", "hello@aliases.test"], all)).stdout).toContain("refused with 450 4.1.1 hello@aliases.test: forwarding destination a@x.test, b@x.test is not verified yet");
    expect((await mf(["alias", "test", "hello@aliases.test"])).stdout).toContain("hello@aliases.test: deliver to 2 targets");
    // The rest is about routing alone.
    const route = (address: string, ...flags: string[]) => mf(["alias", "test", address, ...flags], { MAILFERRY_VERIFY_DESTINATIONS: "false" });
    expect((await route("hello+tag@aliases.test")).stdout).toBe(
      "hello+tag@aliases.test: deliver to 2 targets\n  a+tag@x.test  via hello on aliases.test\n  b+tag@x.test  via hello on aliases.test\n",
    );
    expect((await route("old@aliases.test")).stdout).toBe("old@aliases.test: refused with 550 5.2.1 old@aliases.test is disabled (alias old on aliases.test)\n");
    const json = JSON.parse((await route("info@aliases.test", "--json")).stdout);
    expect(json).toMatchObject({ action: "deliver", targets: [{ kind: "address", address: "team+info@x.test" }] });
    expect((await mf(["alias", "export", "aliases.test"])).stdout).toBe("forward-email=hello:a@x.test,hello:b@x.test\nforward-email=/^(sales|info)$/:team+$1@x.test\nforward-email=!!!old\n");
    expect((await mf(["domain", "set", "aliases.test", "delivery_port=2526", "accept_subdomains=on"])).exitCode).toBe(0);
    expect((await route("hello@sub.aliases.test")).stdout).toContain("a@x.test  via hello on aliases.test (port 2526)");
    expect((await mf(["domain", "set", "aliases.test", "random_subdomain_length=99"])).exitCode).toBe(2);
    expect((await mf(["domain", "set", "aliases.test", "colour=blue"])).exitCode).toBe(2);
    expect(await mf(["alias", "remove", "aliases.test", "/^(sales|info)$/"])).toMatchObject({ exitCode: 0 });
    expect((await mf(["alias", "remove", "aliases.test", "/^(sales|info)$/"])).exitCode).toBe(1);
    const invalid = await mf(["alias", "add", "aliases.test", "/^(a|b$/", "x@x.test"]);
    expect(invalid.exitCode).toBe(2);
    expect(invalid.stderr).toContain("not a regular expression RE2 accepts");
  });

  test("alias import: dry run, errors with line and column (nothing written), --apply", async () => {
    await mf(["domain", "add", "import.test"]);
    const good = join(sandbox.dataDir, "good.txt");
    writeFileSync(good, "forward-email=hello:a@x.test,b@x.test\nforward-email-port=1337\n");
    expect((await mf(["alias", "import", "import.test", good])).stdout).toBe("would import 2 aliases and delivery port 1337 into import.test (dry run; add --apply to write)\n");
    expect((await mf(["alias", "list", "import.test"])).stdout).toBe("(no aliases)\n");
    const bad = join(sandbox.dataDir, "bad.txt");
    writeFileSync(bad, "forward-email=ok:a@x.test\nforward-email=!!!!x\nforward-email=/^(a|b$/:y@x.test\n");
    const failed = await mf(["alias", "import", "import.test", bad, "--apply"]);
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toContain(`${bad}:2:15: "!!!!x": at most three ! marks`);
    expect(failed.stderr).toContain(`${bad}:3:15: "/^(a|b$/": regex /^(a|b$/ refused`);
    expect(failed.stderr).toContain("nothing imported: 2 errors");
    expect((await mf(["alias", "list", "import.test"])).stdout).toBe("(no aliases)\n");
    expect((await mf(["alias", "import", "import.test", good, "--apply"])).stdout).toBe("imported 2 aliases and delivery port 1337 into import.test\n");
    expect((await mf(["alias", "export", "import.test"])).stdout).toBe("forward-email=hello:a@x.test\nforward-email=b@x.test\nforward-email-port=1337\n");
  });

  test("DKIM keys: made on domain add; rotated in two phases (pending, then --activate); the retired one removable only when forced within its week", async () => {
    expect((await mf(["domain", "add", "keys.test", "--selector", "first"])).exitCode).toBe(0);
    expect((await mf(["domain", "dkim", "keys.test"])).stdout).toMatch(/^first {2}rsa {2}signing {2}/);
    const rotated = await mf(["domain", "dkim-rotate", "keys.test", "second"]);
    expect(rotated.stdout).toContain("new key for keys.test: selector second, pending: publish its record (mailferry domain dns keys.test)");
    let keys = (await mf(["domain", "dkim", "keys.test"])).stdout.split("\n");
    expect(keys[0]).toMatch(/^second {2}rsa {2}pending \(signs once DNS serves its record\)/);
    expect(keys[1]).toMatch(/^first {2}rsa {2}signing/);
    const dns = (await mf(["domain", "dns", "keys.test"])).stdout;
    expect(dns).toContain("; DKIM key (selector second, pending: mailferry signs with it once DNS serves this record)\nsecond._domainkey.keys.test. 3600 IN TXT");
    expect(dns).toContain("; DKIM key (selector first)\nfirst._domainkey.keys.test. 3600 IN TXT");
    // A second rotation waits for the first to finish.
    expect((await mf(["domain", "dkim-rotate", "keys.test", "third"])).stderr).toContain("keys.test already has a new key waiting (selector second)");

    const activated = await mf(["domain", "dkim-rotate", "keys.test", "--activate"]);
    expect(activated.stdout).toBe("selector second signs mail of keys.test now; first retired: keep its record published for a week\n");
    keys = (await mf(["domain", "dkim", "keys.test"])).stdout.split("\n");
    expect(keys[0]).toMatch(/^second {2}rsa {2}signing/);
    expect(keys[1]).toMatch(/^first {2}rsa {2}retired \d{4}-\d\d-\d\d \d\d:\d\d UTC \(still published; removable after \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
    expect((await mf(["domain", "dkim-rotate", "keys.test", "--activate"])).stderr).toContain("keys.test has no pending DKIM key: rotate first");

    expect((await mf(["domain", "dkim-remove", "keys.test", "second"])).exitCode).toBe(1);
    const early = await mf(["domain", "dkim-remove", "keys.test", "first"]);
    expect(early.exitCode).toBe(1);
    expect(early.stderr).toMatch(/selector first was retired on .+ UTC; mail signed with it may still be in transit until .+ UTC: remove it after that \(or force\)/);
    expect((await mf(["domain", "dkim-remove", "keys.test", "first", "--force"])).exitCode).toBe(0);
    expect((await mf(["domain", "dns", "keys.test"])).stdout).not.toContain("first._domainkey");
    expect(JSON.stringify(JSON.parse((await mf(["domain", "dkim", "keys.test", "--json"])).stdout))).not.toContain("PRIVATE KEY");
  }, 60_000);

  test("allow add, list, remove", async () => {
    expect((await mf(["allow", "add", "192.0.2.0/24", "--description", "partner relay"])).stdout).toBe("allowlisted cidr 192.0.2.0/24\n");
    expect((await mf(["allow", "add", "Partner.Example"])).stdout).toBe("allowlisted domain partner.example\n");
    expect((await mf(["allow", "add", "not valid!"])).exitCode).toBe(2);
    expect((await mf(["allow", "add", "partner.example"])).exitCode).toBe(1);
    expect((await mf(["allow", "list"])).stdout).toBe("cidr    192.0.2.0/24  (partner relay)\ndomain  partner.example\n");
    expect((await mf(["allow", "remove", "192.0.2.0/24"])).exitCode).toBe(0);
    expect((await mf(["allow", "list"])).stdout).toBe("domain  partner.example\n");
  });

  test("deny add (with reason and expiry), list, remove", async () => {
    expect((await mf(["deny", "add", "203.0.113.9", "--reason", "spam run", "--expires", "2d"])).stdout).toMatch(/^denylisted ip 203\.0\.113\.9 until \d{4}-/);
    expect((await mf(["deny", "add", "spammer.test"])).exitCode).toBe(0);
    expect((await mf(["deny", "add", "x", "--expires", "soon"])).exitCode).toBe(2);
    const listed = (await mf(["deny", "list"])).stdout;
    expect(listed).toMatch(/^domain {2}spammer\.test {2}admin\nip {6}203\.0\.113\.9 {2}admin until .* \(spam run\)\n$/);
    expect((await mf(["deny", "remove", "203.0.113.9"])).exitCode).toBe(0);
    expect((await mf(["deny", "remove", "203.0.113.9"])).exitCode).toBe(1);
  });

  test("domain webhook-key prints only the key; --rotate replaces it", async () => {
    await mf(["domain", "add", "hooks.test"]);
    const key = (await mf(["domain", "webhook-key", "hooks.test"])).stdout;
    expect(key).toMatch(/^[0-9a-f]{64}\n$/);
    expect((await mf(["domain", "webhook-key", "hooks.test"])).stdout).toBe(key);
    const rotated = (await mf(["domain", "webhook-key", "hooks.test", "--rotate"])).stdout;
    expect(rotated).toMatch(/^[0-9a-f]{64}\n$/);
    expect(rotated).not.toBe(key);
  });

  test("alias vacation turns an auto-reply on and off; refused for catch-all", async () => {
    await mf(["domain", "add", "vacation.test"]);
    await mf(["alias", "add", "vacation.test", "me", "me@elsewhere.test"]);
    await mf(["alias", "add", "vacation.test", "*", "me@elsewhere.test"]);
    const on = await mf(["alias", "vacation", "vacation.test", "me", "--subject", "Away", "--message", "Back soon", "--start", "2026-12-20", "--end", "2027-01-05"]);
    expect(on).toMatchObject({ exitCode: 0, stdout: "vacation reply for me@vacation.test on, 2026-12-20 to 2027-01-05\n" });
    expect((await mf(["alias", "vacation", "vacation.test", "me", "--subject", "Away", "--message", "Back soon", "--off"])).stdout).toBe("vacation reply for me@vacation.test off\n");
    const star = await mf(["alias", "vacation", "vacation.test", "*", "--subject", "Away", "--message", "x"]);
    expect(star.exitCode).toBe(2);
    expect(star.stderr).toContain("only for exact aliases");
  });

  test("admin create reads the password from stdin and refuses a short one", async () => {
    const create = (name: string, password: string) => {
      const proc = Bun.spawn([...CLI, "admin", "create", name], { cwd: sandbox.dataDir, env: { ...process.env, MAILFERRY_DATA_DIR: sandbox.dataDir }, stdin: new Blob([`${password}\n`]), stdout: "pipe", stderr: "pipe" });
      return Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    };
    const [code, out] = await create("alice", "a long enough password");
    expect(code).toBe(0);
    expect(out).toBe("created admin alice; log in at the admin URL\n");
    const [short, , err] = await create("bob", "short");
    expect(short).toBe(2);
    expect(err).toContain("at least 12 characters");
    expect((await create("alice", "another long password"))[0]).toBe(1);
  });

  test("config check prints effective values with their origin, or names the bad key (exit 2)", async () => {
    const ok = await mf(["config", "check", "--smtp-port", "2600"], { MAILFERRY_HTTP_PORT: "9090" });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/smtp\.port\s+2600\s+--smtp-port/);
    expect(ok.stdout).toMatch(/http\.port\s+9090\s+MAILFERRY_HTTP_PORT/);
    const json = JSON.parse((await mf(["config", "check", "--json"])).stdout);
    expect(json.ok).toBe(true);
    const bad = await mf(["config", "check"], { MAILFERRY_OUTBOUND_PORT: "smtp" });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('MAILFERRY_OUTBOUND_PORT="smtp"');
  });

  test("serve refuses invalid configuration before starting, naming the key (exit 2)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-cli-bad-"));
    writeFileSync(join(dir, "config.toml"), `[smtp]\nport = "twenty-five"\n`);
    const r = await run([...CLI, "serve"], { cwd: dir, env: { MAILFERRY_DATA_DIR: dir } });
    rmSync(dir, { recursive: true, force: true });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("[smtp] port");
    expect(r.stderr).toContain('"twenty-five"');
  });

  test("serve on a port already in use fails with exit 1 and a message", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    const r = await mf(["serve"], { MAILFERRY_SMTP_PORT: String(port), MAILFERRY_HTTP_PORT: "0", MAILFERRY_DNS_SERVERS: sandbox.dns.address });
    blocker.close();
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/in use|EADDRINUSE/i);
  });

  test("npm run mailferry -- <args> is the same CLI", async () => {
    const r = await run(["npm", "run", "--silent", "mailferry", "--", "domain", "list", "--data-dir", sandbox.dataDir], { cwd: root });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("example.test");
  });
});

describe("npm start (the README's first command)", () => {
  test("starts on the data dir given, prints where it listens, answers /healthz, stops on Ctrl-C", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-npm-start-"));
    const env = { ...process.env, MAILFERRY_DATA_DIR: dir, MAILFERRY_SMTP_PORT: "0", MAILFERRY_HTTP_PORT: "0", MAILFERRY_DNS_SERVERS: sandbox.dns.address };
    // Its own process group, so Ctrl-C can be delivered to npm and mailferry alike, as a terminal does.
    const child = spawn("npm", ["start"], { cwd: root, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      let output = "";
      const ready = await new Promise<Record<string, string>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready:\n${output}`)), 20_000);
        child.stdout!.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          const line = output.split("\n").find((l) => l.includes('"mailferry.ready"'));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line));
          }
        });
      });
      expect(ready.data_dir).toBe(dir);
      expect(ready.smtp).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(ready.admin_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const health = (await fetch(ready.health_url!).then((r) => r.json())) as { status: string };
      expect(health.status).toBe("ok");
      process.kill(-child.pid!, "SIGINT");
      await exited;
      const port = Number(ready.smtp!.split(":")[1]);
      const stillListening = await new Promise<boolean>((resolve) => {
        const probe = net.connect(port, "127.0.0.1");
        probe.on("connect", () => (probe.destroy(), resolve(true)));
        probe.on("error", () => resolve(false));
      });
      expect(stillListening).toBe(false);
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe("serve", () => {
  test("starts, answers health and SMTP, and exits 0 on SIGTERM", async () => {
    const result = await smokeTest(CLI, sandbox.dataDir, sandbox.dns);
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
    // Not a terminal ([log] format auto): one JSON object per line, each with its time, level and event.
    const wellFormed = (l: Record<string, unknown>) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(String(l.time)) && ["debug", "info", "warn", "error"].includes(String(l.level)) && typeof l.event === "string";
    expect(lines.filter((l) => !wellFormed(l))).toEqual([]);
    expect(lines.map((l) => l.event)).toContain("mailferry.ready");
    expect(lines.find((l) => l.event === "mailferry.ready")).toHaveProperty("admin_url");
  });
});
