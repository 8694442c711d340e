// install.sh and systemd/mailferry.service, run for real. install.sh installs
// the compiled binary into a fake root (--root: the user goes into that root's
// passwd, no systemctl) and runs it there; it must be idempotent, change
// nothing in a dry run and uninstall without touching data or configuration.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary } from "./support/build.ts";
import { hashTree } from "./support/files.ts";
import { type Postgres, startPostgres } from "./support/postgres.ts";
import { CLI, run } from "./support/smoke.ts";

const CHECKOUT = join(import.meta.dir, "..");
const INSTALL = join(CHECKOUT, "install.sh");
const UNIT = join(CHECKOUT, "systemd/mailferry.service");
const ANSWERS = ["--non-interactive", "--hostname", "mx.example.test", "--domain", "example.test", "--admin-email", "admin@example.test"];

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("\n*** not root: the install.sh tests (useradd, chown) are SKIPPED; run them as root ***\n");
const hasShellcheck = Bun.which("shellcheck") !== null;
if (!hasShellcheck) console.warn("\n*** shellcheck is NOT installed: install.sh is not linted. Install it: apt-get install shellcheck ***\n");
const hasSystemdAnalyze = Bun.which("systemd-analyze") !== null;
if (!hasSystemdAnalyze) console.warn("\n*** systemd-analyze is NOT installed: the unit is not verified. Install it: apt-get install systemd ***\n");

let binary: string;
const roots: string[] = [];
/** The fake root the first test installs into; the later ones continue from it. */
let root: string;

beforeAll(async () => {
  binary = await compiledBinary();
  root = fakeRoot();
}, 180_000);
afterAll(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

function fakeRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-root-"));
  roots.push(dir);
  return dir;
}

const install = (...args: string[]) => run([INSTALL, ...args], { cwd: CHECKOUT, timeoutMs: 90_000 });
const at = (path: string) => join(root, path);
const mode = (path: string) => statSync(path).mode & 0o7777;

/** The fields of the `name` line in the fake root's passwd or group file. */
function entry(file: "passwd" | "group", name = "mailferry"): string[] | undefined {
  return readFileSync(at(`etc/${file}`), "utf8").split("\n").find((line) => line.startsWith(`${name}:`))?.split(":");
}

/** Every path below `dir` with its type, mode, owner and (files) content hash. */
function snapshot(dir: string): Record<string, string> {
  const hashes = hashTree(dir);
  const out: Record<string, string> = {};
  for (const path of readdirSync(dir, { recursive: true }) as string[]) {
    const st = lstatSync(join(dir, path));
    out[path] = `${st.isDirectory() ? "dir" : "file"} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${hashes[path] ?? ""}`;
  }
  return out;
}

/** The installed binary on the installed data dir and configuration, as the service would run it. */
const installed = (...args: string[]) =>
  run([at("usr/local/bin/mailferry"), ...args], { cwd: root, env: { MAILFERRY_DATA_DIR: at("var/lib/mailferry"), MAILFERRY_CONFIG: at("etc/mailferry/config.toml") } });

describe.skipIf(!isRoot)("install.sh --root", () => {
  test("installs the user, binary, configuration, data dir and unit, adds the domain and prints its DNS records", async () => {
    const hostPasswd = readFileSync("/etc/passwd", "utf8");
    const result = await install("--root", root, "--binary", binary, ...ANSWERS);
    expect(result).toMatchObject({ exitCode: 0 });

    const [, , uid, gid, , home, shell] = entry("passwd")!;
    expect({ home, shell }).toEqual({ home: "/var/lib/mailferry", shell: "/usr/sbin/nologin" });
    expect(entry("group")![2]).toBe(gid!);
    expect(readFileSync("/etc/passwd", "utf8")).toBe(hostPasswd);

    expect(readFileSync(at("etc/systemd/system/mailferry.service"), "utf8")).toBe(readFileSync(UNIT, "utf8"));

    const config = at("etc/mailferry/config.toml");
    expect(Bun.TOML.parse(readFileSync(config, "utf8"))).toEqual({
      hostname: "mx.example.test",
      smtp: { host: "0.0.0.0", port: 25 },
      submission: { enabled: true, host: "0.0.0.0", port: 587, tls_port: 465 },
      http: { host: "127.0.0.1", port: 8080 },
      acme: { email: "admin@example.test" },
    });
    expect(mode(config)).toBe(0o640);
    expect([statSync(config).uid, statSync(config).gid]).toEqual([0, Number(gid)]);
    expect(mode(at("etc/mailferry"))).toBe(0o770);
    // mailferry itself accepts the configuration.
    expect((await installed("config", "check")).exitCode).toBe(0);

    const data = at("var/lib/mailferry");
    expect(mode(data)).toBe(0o700);
    for (const path of [data, ...readdirSync(data).map((f) => join(data, f))]) expect(`${path} ${statSync(path).uid}:${statSync(path).gid}`).toBe(`${path} ${uid}:${gid}`);

    const bin = at("usr/local/bin/mailferry");
    expect(mode(bin)).toBe(0o755);
    expect((await run([bin, "version"], { cwd: root })).stdout).toMatch(/^mailferry \d+\.\d+\.\d+/);

    expect(result.stdout).toContain("example.test. 3600 IN MX 10 mx.example.test.");
    const records = await installed("domain", "dns", "example.test");
    expect(records.stdout).toContain("mailferry._domainkey.example.test. 3600 IN TXT");
    expect(result.stdout).toContain(records.stdout);
    // The service never ran here, so there is no set-up token yet: said, not failed.
    expect(result.stdout).toContain("== Admin set-up: no set-up token in");
  }, 90_000);

  test("a second run changes nothing and says what it kept", async () => {
    const before = snapshot(root);
    const again = await install("--root", root, "--binary", binary, ...ANSWERS);
    expect(again).toMatchObject({ exitCode: 0 });
    expect(snapshot(root)).toEqual(before);
    for (const kept of ["kept group mailferry", "kept user mailferry", `kept ${at("usr/local/bin/mailferry")} (up to date)`, `kept ${at("etc/mailferry/config.toml")}`, "kept domain example.test"]) {
      expect(again.stdout).toContain(kept);
    }
    expect(again.stdout).not.toContain("\n+ ");
  }, 90_000);

  test("an existing config.toml is never overwritten, whatever the answers", async () => {
    const config = at("etc/mailferry/config.toml");
    writeFileSync(config, `${readFileSync(config, "utf8")}\n[log]\nlevel = "debug"\n`);
    const edited = readFileSync(config, "utf8");
    const other = await install("--root", root, "--binary", binary, "--non-interactive", "--hostname", "other.example.test");
    expect(other.exitCode).toBe(0);
    expect(readFileSync(config, "utf8")).toBe(edited);
    expect(other.stdout).toContain("an existing configuration is never overwritten");
  }, 90_000);

  test("an outdated binary or unit is replaced (through a .new file renamed over it)", async () => {
    writeFileSync(at("usr/local/bin/mailferry"), "an older build\n");
    writeFileSync(at("etc/systemd/system/mailferry.service"), "[Unit]\nDescription=an older unit\n");
    const upgrade = await install("--root", root, "--binary", binary, ...ANSWERS);
    expect(upgrade).toMatchObject({ exitCode: 0 });
    expect(upgrade.stdout).toContain(`+ mv -f ${at("usr/local/bin/mailferry.new")} ${at("usr/local/bin/mailferry")}`);
    expect(Bun.hash(await Bun.file(at("usr/local/bin/mailferry")).arrayBuffer())).toBe(Bun.hash(await Bun.file(binary).arrayBuffer()));
    expect(mode(at("usr/local/bin/mailferry"))).toBe(0o755);
    expect(readFileSync(at("etc/systemd/system/mailferry.service"), "utf8")).toBe(readFileSync(UNIT, "utf8"));
    expect(readdirSync(at("usr/local/bin"))).toEqual(["mailferry"]);
  }, 90_000);

  test("--dry-run on an empty root prints the planned actions and leaves it empty", async () => {
    const empty = fakeRoot();
    const plan = await install("--root", empty, "--binary", binary, ...ANSWERS, "--dry-run");
    expect(plan.exitCode).toBe(0);
    expect(readdirSync(empty)).toEqual([]);
    for (const step of [
      `would write ${empty}/etc/passwd`,
      `would run: groupadd --system --prefix ${empty} mailferry`,
      "would run: useradd --system",
      `would run: mv -f ${empty}/usr/local/bin/mailferry.new ${empty}/usr/local/bin/mailferry`,
      `would run: install -d -m 0700 -o mailferry -g mailferry ${empty}/var/lib/mailferry`,
      `would write ${empty}/etc/mailferry/config.toml (mode 0640, owner 0:mailferry)`,
      '    hostname = "mx.example.test"',
      `would run: mv -f ${empty}/etc/systemd/system/mailferry.service.new ${empty}/etc/systemd/system/mailferry.service`,
      "domain add example.test",
      "dry run: nothing was changed",
    ]) {
      expect(plan.stdout).toContain(step);
    }
  }, 30_000);

  test.skipIf(!Bun.which("script"))("on a terminal it asks for what the options do not give (the domain defaults to the host name's parent)", async () => {
    const asked = fakeRoot();
    // script(1) gives install.sh a terminal; the answers are typed on it: host name, Enter for the default domain, e-mail.
    const session = await run(["script", "-qec", `${INSTALL} --root ${asked} --binary ${binary}`, "/dev/null"], { cwd: CHECKOUT, stdin: "MX.Example.TEST\n\nadmin@example.test\n", timeoutMs: 90_000 });
    expect(session).toMatchObject({ exitCode: 0 });
    for (const question of ["Mail host name of this server", "First domain to receive mail for (empty: none yet) [Example.TEST]", "Administrator e-mail address"]) expect(session.stdout).toContain(question);
    expect(Bun.TOML.parse(readFileSync(join(asked, "etc/mailferry/config.toml"), "utf8"))).toMatchObject({ hostname: "mx.example.test", acme: { email: "admin@example.test" } });
    expect(session.stdout).toContain("added example.test");
  }, 90_000);

  test("a binary for another CPU is refused before anything is changed", async () => {
    const empty = fakeRoot();
    // The built binary's ELF header with another machine: aarch64 (183) for x86_64 (62), else x86_64.
    const header = Buffer.from(await Bun.file(binary).slice(0, 64).arrayBuffer());
    header.writeUInt16LE(header.readUInt16LE(18) === 62 ? 183 : 62, 18);
    const foreign = join(fakeRoot(), "mailferry");
    writeFileSync(foreign, header, { mode: 0o755 });
    const refused = await install("--root", empty, "--binary", foreign, ...ANSWERS);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("is built for another CPU");
    expect(readdirSync(empty)).toEqual([]);
  });

  test("usage errors exit 2 and change nothing", async () => {
    const empty = fakeRoot();
    const cases: [string[], string][] = [
      [["--root", empty, ...ANSWERS], "which binary?"],
      [["--root", empty, "--binary", binary, "https://example.test/mailferry", ...ANSWERS], "not both"],
      [["--root", empty, "--binary", binary, "--frobnicate"], "unknown option: --frobnicate"],
      [["--root", empty, "--binary", binary, "--non-interactive", "--hostname", "not a host"], "must be a fully qualified name"],
      [["--root", empty, "--binary", binary, "--non-interactive", "--hostname", "mx.example.test", "--admin-email", 'x"@example.test'], "must be an address"],
    ];
    for (const [args, message] of cases) {
      const r = await install(...args);
      expect([r.exitCode, r.stderr]).toEqual([2, expect.stringContaining(message)]);
    }
    expect(readdirSync(empty)).toEqual([]);
  }, 30_000);

  test("--uninstall removes the binary and the unit, keeps data, configuration and user, and says so", async () => {
    const before = snapshot(root);
    const plan = await install("--root", root, "--uninstall", "--dry-run");
    expect(plan.stdout).toContain(`would run: rm -f ${at("usr/local/bin/mailferry")}`);
    expect(snapshot(root)).toEqual(before);

    const removed = await install("--root", root, "--uninstall");
    expect(removed.exitCode).toBe(0);
    expect(existsSync(at("usr/local/bin/mailferry"))).toBe(false);
    expect(existsSync(at("etc/systemd/system/mailferry.service"))).toBe(false);
    const left = snapshot(root);
    for (const path of Object.keys(before).filter((p) => p.startsWith("var/lib/mailferry") || p.startsWith("etc/mailferry") || p === "etc/passwd")) expect(left[path]).toBe(before[path]!);
    expect(removed.stdout).toContain(`kept ${at("var/lib/mailferry")} (the data), ${at("etc/mailferry")} (the configuration) and the user mailferry`);

    const again = await install("--root", root, "--uninstall");
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain("(not installed)");
  }, 30_000);
});

describe.skipIf(!isRoot)("install.sh --database-url: a further node on one PostgreSQL (docs/multi-node.md)", () => {
  let postgres: Postgres;
  let url: string;
  let node: string;
  /** The DKIM record the first node published, made when it added the domain. */
  let firstNodeDkim: string;
  const NODE_ANSWERS = ["--non-interactive", "--hostname", "mx2.example.test", "--domain", "example.test"];

  beforeAll(async () => {
    postgres = await startPostgres();
    // The private server trusts loopback, so any password does: this one must never be shown.
    url = (await postgres.createDatabase()).replace("postgres@", "postgres:pg-s3cret@");
    const first = { MAILFERRY_DATA_DIR: fakeRoot(), MAILFERRY_DATABASE_URL: url };
    expect((await run([...CLI, "domain", "add", "example.test"], { cwd: CHECKOUT, env: first })).exitCode).toBe(0);
    firstNodeDkim = (await run([...CLI, "domain", "dns", "example.test"], { cwd: CHECKOUT, env: first })).stdout.split("\n").find((l) => l.includes("._domainkey."))!;
    expect(firstNodeDkim).toContain("IN TXT");
    node = fakeRoot();
  }, 120_000);
  afterAll(() => postgres?.stop());

  test("writes [database] url into a 0600 configuration; the domain and its DKIM key come from the database", async () => {
    const result = await install("--root", node, "--binary", binary, ...NODE_ANSWERS, "--database-url", url);
    expect(result).toMatchObject({ exitCode: 0 });
    expect(result.stderr).not.toContain("pg-s3cret");
    const config = join(node, "etc/mailferry/config.toml");
    expect(Bun.TOML.parse(readFileSync(config, "utf8"))).toMatchObject({ hostname: "mx2.example.test", database: { url } });
    expect(mode(config)).toBe(0o600);
    const uid = Number(readFileSync(join(node, "etc/passwd"), "utf8").split("\n").find((l) => l.startsWith("mailferry:"))!.split(":")[2]);
    expect(statSync(config).uid).toBe(uid);
    expect(result.stdout).toContain("kept domain example.test (already added)");
    expect(result.stdout).toContain(firstNodeDkim);
    expect(result.stdout).not.toContain("pg-s3cret");
    expect(existsSync(join(node, "var/lib/mailferry/mailferry.db"))).toBe(false);
  }, 90_000);

  test("an existing configuration is kept, and the warning says --database-url is not in it", async () => {
    const kept = fakeRoot();
    mkdirSync(join(kept, "etc/mailferry"), { recursive: true });
    writeFileSync(join(kept, "etc/mailferry/config.toml"), 'hostname = "mx2.example.test"\n');
    const result = await install("--root", kept, "--binary", binary, "--non-interactive", "--hostname", "mx2.example.test", "--database-url", url);
    expect(result.exitCode).toBe(0);
    expect(readFileSync(join(kept, "etc/mailferry/config.toml"), "utf8")).toBe('hostname = "mx2.example.test"\n');
    expect(result.stderr).toContain(`--database-url was not written into the existing ${kept}/etc/mailferry/config.toml: add [database] url there yourself`);
  }, 90_000);

  test("--dry-run shows the configuration without the password; a URL that is not postgres:// is a usage error", async () => {
    const empty = fakeRoot();
    const plan = await install("--root", empty, "--binary", binary, ...NODE_ANSWERS, "--database-url", url, "--dry-run");
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toContain(`would write ${empty}/etc/mailferry/config.toml (mode 0600, owner mailferry:mailferry)`);
    expect(plan.stdout).toContain('    url = "postgres://postgres:***@127.0.0.1:');
    expect(plan.stdout).not.toContain("pg-s3cret");
    for (const bad of ["mysql://db/mailferry", 'postgres://a"b@db/mailferry']) {
      const r = await install("--root", empty, "--binary", binary, ...NODE_ANSWERS, "--database-url", bad);
      expect([r.exitCode, r.stderr]).toEqual([2, expect.stringContaining("--database-url: must be a URL such as postgres://")]);
    }
    expect(readdirSync(empty)).toEqual([]);
  }, 60_000);
});

test("--dry-run on this machine plans the systemd steps and changes nothing", async () => {
  const paths = ["/usr/local/bin/mailferry", "/etc/mailferry", "/var/lib/mailferry", "/etc/systemd/system/mailferry.service"];
  const before = { present: paths.map((p) => existsSync(p)), passwd: readFileSync("/etc/passwd", "utf8") };
  const plan = await install("--binary", binary, ...ANSWERS, "--dry-run");
  expect(plan).toMatchObject({ exitCode: 0 });
  expect({ present: paths.map((p) => existsSync(p)), passwd: readFileSync("/etc/passwd", "utf8") }).toEqual(before);
  expect(plan.stdout).toContain("would run: systemctl enable --now mailferry");
  expect(plan.stdout).toContain("would run: runuser -u mailferry -- env MAILFERRY_DATA_DIR=/var/lib/mailferry MAILFERRY_CONFIG=/etc/mailferry/config.toml /usr/local/bin/mailferry health --wait 60s");
  if (!existsSync("/run/systemd/system")) expect(plan.stderr).toContain("systemd is not running here");
}, 30_000);

test.skipIf(!hasShellcheck)("shellcheck passes on install.sh", async () => {
  const lint = await run(["shellcheck", INSTALL], { cwd: CHECKOUT });
  expect(lint.stdout + lint.stderr).toBe("");
  expect(lint.exitCode).toBe(0);
});

/** The unit's `Key=value` lines (a key given twice keeps the last). */
function unitSettings(): Record<string, string> {
  const lines = readFileSync(UNIT, "utf8").split("\n").filter((l) => /^[A-Za-z]+=/.test(l));
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

test("the unit has the service settings and hardening of the issue, and a health check", () => {
  expect(unitSettings()).toMatchObject({
    Type: "simple",
    User: "mailferry",
    ExecStart: "/usr/local/bin/mailferry serve",
    ExecStartPost: "/usr/local/bin/mailferry health --wait 60s",
    AmbientCapabilities: "CAP_NET_BIND_SERVICE",
    StateDirectory: "mailferry",
    NoNewPrivileges: "yes",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    PrivateDevices: "yes",
    RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
    SystemCallFilter: "@system-service",
    Restart: "on-failure",
    LimitNOFILE: "65536",
  });
  // Off on purpose: see the MemoryDenyWriteExecute test below.
  expect(unitSettings().MemoryDenyWriteExecute).toBeUndefined();
});

test.skipIf(!hasSystemdAnalyze)("systemd-analyze verify passes on the unit, without a warning", async () => {
  // verify wants the ExecStart binary to exist: a copy of the unit that names the built one, nothing else changed.
  const dir = fakeRoot();
  const copy = join(dir, "mailferry.service");
  writeFileSync(copy, readFileSync(UNIT, "utf8").replaceAll("/usr/local/bin/mailferry", binary));
  const verify = await run(["systemd-analyze", "verify", copy], { cwd: dir });
  expect(verify.stderr).toBe("");
  expect(verify.exitCode).toBe(0);
});

// PR_SET_MDWE (Linux 6.3+) refuses writable+executable memory as systemd's MemoryDenyWriteExecute does.
const MDWE_EXEC = "import ctypes, os, sys\nif ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit(77)\nos.execv(sys.argv[1], sys.argv[1:])";
const hasMdwe = Bun.which("python3") !== null && (await run(["python3", "-c", MDWE_EXEC, "/bin/true"], { cwd: "/" })).exitCode === 0;
if (!hasMdwe) console.warn("\n*** PR_SET_MDWE is not available (Linux 6.3+ and python3 needed): the MemoryDenyWriteExecute finding is not checked ***\n");

test.skipIf(!hasMdwe)("MemoryDenyWriteExecute: the binary runs, but JavaScriptCore has no JIT under it (so the unit leaves it off)", async () => {
  // A hot function, then: how often the DFG JIT compiled it, and how many writable+executable mappings exist.
  const probe = `const jsc = require("bun:jsc"); function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s }
for (let k = 0; k < 2000; k++) hot(10000);
console.log(jsc.numberOfDFGCompiles(hot), require("fs").readFileSync("/proc/self/maps", "utf8").split("\\n").filter((l) => / rwxp /.test(l)).length)`;
  // BUN_BE_BUN makes the compiled binary run the given script instead of mailferry.
  const env = { BUN_BE_BUN: "1" };
  const [plainCompiles, plainRwx] = (await run([binary, "-e", probe], { cwd: "/", env })).stdout.trim().split(" ").map(Number);
  expect(plainCompiles).toBeGreaterThanOrEqual(1);
  expect(plainRwx).toBeGreaterThanOrEqual(1);

  const version = await run(["python3", "-c", MDWE_EXEC, binary, "version"], { cwd: "/" });
  expect(version.stdout).toMatch(/^mailferry \d/);
  const underMdwe = (await run(["python3", "-c", MDWE_EXEC, binary, "-e", probe], { cwd: "/", env })).stdout.trim();
  // No writable+executable memory, and JavaScriptCore's answer when its JIT is off.
  expect(underMdwe).toBe("1000000 0");
});
