// The README's quick start, run as written: every command of its block between
// the quickstart markers, pasted into a shell next to a server started as
// `npm start` starts it, on a data dir that already exists as in a checkout
// (data/.gitkeep). Only the ports change (the test's free ones), and DNS points
// at the test DNS server, where gmail.com's MX is a local sink. Each comment
// line under a command is output the command must print ("…" stands for text
// left out). Then the greylisted message's retry must reach gmail.com's MX,
// and the data dir must be private so that `doctor` is clean about it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { CLI, cleanEnv, run } from "./support/smoke.ts";

const ROOT = join(import.meta.dir, "..");
const README_PORTS = { smtp: "127.0.0.1:2525", http: "127.0.0.1:8080" };

interface Step {
  command: string;
  /** Comment lines under the command: output it must print. */
  expected: string[];
}

/** The commands of the README's quick-start block, each with the output its comments promise. */
function quickStartSteps(readme: string): Step[] {
  const block = /<!-- quickstart:begin -->\n```sh\n([\s\S]*?)```\n<!-- quickstart:end -->/.exec(readme);
  if (!block) throw new Error("README.md has no ```sh block between <!-- quickstart:begin --> and <!-- quickstart:end -->");
  const steps: Step[] = [];
  for (const line of block[1]!.split("\n").filter((l) => l.trim())) {
    if (line.startsWith("#")) steps.at(-1)!.expected.push(line.replace(/^#\s?/, "").trim());
    else steps.push({ command: line, expected: [] });
  }
  return steps;
}

/** A line of `output` holds the parts of `expected` around each "…", in order. */
function printed(output: string, expected: string): boolean {
  const parts = expected.split("…").map((p) => p.trim()).filter(Boolean);
  return output.split("\n").some((line) => {
    let at = 0;
    for (const part of parts) {
      const found = line.indexOf(part, at);
      if (found < 0) return false;
      at = found + part.length;
    }
    return true;
  });
}

interface Server {
  smtp: string;
  http: string;
  stop(): Promise<number>;
}

/** `npm start`'s command (`bun src/main.ts serve`) in the checkout, until its ready line. */
async function startServer(env: Record<string, string>): Promise<Server> {
  const proc = Bun.spawn([...CLI, "serve"], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let output = "";
  const deadline = Date.now() + 20_000;
  while (!output.includes('"mailferry.ready"')) {
    if (Date.now() > deadline) throw new Error(`server not ready:\n${output}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited:\n${output}`);
    output += new TextDecoder().decode(value);
  }
  const ready = JSON.parse(output.split("\n").find((l) => l.includes('"mailferry.ready"'))!) as { smtp: string; admin_url: string };
  // Keep reading so the server never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })();
  return {
    smtp: ready.smtp,
    http: new URL(ready.admin_url).host,
    async stop() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}

describe("README quick start", () => {
  let dns: DnsServer;
  let gmail: Sink;
  let server: Server;
  let work: string;
  let dataDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    gmail = await startSink({ host: "127.0.0.1" });
    dns = await startDnsServer({
      "gmail.com": { MX: [{ priority: 5, exchange: "gmail-smtp-in.l.google.com" }] },
      "gmail-smtp-in.l.google.com": { A: [gmail.host] },
    });
    work = mkdtempSync(join(tmpdir(), "mailferry-quickstart-"));
    // As ./data comes from a checkout: made by git with the umask's modes, holding .gitkeep.
    dataDir = join(work, "data");
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, ".gitkeep"), "");
    chmodSync(join(dataDir, ".gitkeep"), 0o644);
    env = { MAILFERRY_DATA_DIR: dataDir, MAILFERRY_DNS_SERVERS: dns.address, MAILFERRY_DNS_TIMEOUT: "1s", MAILFERRY_OUTBOUND_PORT: String(gmail.port), MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true" };
    server = await startServer({ ...env, MAILFERRY_SMTP_PORT: "0", MAILFERRY_HTTP_PORT: "0" });
  });

  afterAll(async () => {
    await server?.stop();
    await gmail?.close();
    await dns?.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** A README command with the server's real ports. */
  function withPorts(command: string): string {
    return command.replaceAll(README_PORTS.smtp, server.smtp).replaceAll(README_PORTS.http, server.http);
  }

  async function shell(command: string): Promise<string> {
    const result = await run(["bash", "-c", withPorts(command)], { cwd: ROOT, env, timeoutMs: 30_000 });
    return result.stdout + result.stderr;
  }

  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const steps = quickStartSteps(readme);

  test("has commands that use the ports npm start prints, and says what each prints", () => {
    expect(steps.length).toBeGreaterThanOrEqual(5);
    expect(steps.every((s) => s.expected.length > 0)).toBe(true);
    expect(steps.some((s) => s.command.includes(README_PORTS.smtp))).toBe(true);
    expect(steps.some((s) => s.command.includes(README_PORTS.http))).toBe(true);
    // swaks' default sender is root@<host name>, which a bare host name makes an invalid address (501).
    expect(steps.filter((s) => s.command.startsWith("swaks")).every((s) => s.command.includes("--from "))).toBe(true);
  });

  // swaks and curl are Debian packages .ci/run installs; the block cannot run without them.
  const tools = Boolean(Bun.which("swaks") && Bun.which("curl"));

  test.skipIf(!tools)(
    "every command prints what its comment says, in order",
    async () => {
      for (const step of steps) {
        const output = await shell(step.command);
        for (const line of step.expected) {
          if (!printed(output, line)) throw new Error(`\`${step.command}\` should print "${line}", but printed:\n${output}`);
        }
      }
    },
    120_000,
  );

  test.skipIf(!tools)(
    "the greylisted message's retry, 5 minutes later, is forwarded to gmail.com's MX",
    async () => {
      const greylisted = steps.find((s) => s.command.startsWith("swaks") && s.expected.some((e) => e.includes("450 4.7.1")));
      expect(greylisted).toBeDefined();
      // The 5 minutes pass in the greylist table, not on the clock.
      const db = new Database(join(dataDir, "mailferry.db"));
      db.run("UPDATE greylist SET first_seen = first_seen - 300000");
      db.close();
      const output = await shell(greylisted!.command);
      // The reply to the end of DATA.
      expect(output).toMatch(/-> \.\r?\n<-\s+250 2\.0\.0 Message forwarded/);
      const [message] = await gmail.waitForMessages(1, 10_000);
      expect(message!.rcptTo).toEqual(["you@gmail.com"]);
      expect(message!.mailFrom).toStartWith("SRS0=");
    },
    60_000,
  );

  test(
    "the data dir is private (0700, its files 0600), so doctor finds nothing wrong with it",
    async () => {
      const mode = (path: string) => statSync(path).mode & 0o777;
      expect(mode(dataDir)).toBe(0o700);
      for (const file of ["mailferry.db", "mailferry.db-wal", "mailferry.db-shm", "srs.key", "verify.key", ".gitkeep"]) {
        expect({ file, mode: mode(join(dataDir, file)).toString(8) }).toEqual({ file, mode: "600" });
      }
      const doctor = await run([...CLI, "doctor", "--json"], { cwd: ROOT, env, timeoutMs: 30_000 });
      const findings = (JSON.parse(doctor.stdout) as { findings: { check: string; severity: string; message: string }[] }).findings;
      const about = findings.filter((f) => f.check === "data dir" || f.check === "database");
      expect(about.length).toBeGreaterThanOrEqual(2);
      expect(about.filter((f) => f.severity !== "ok")).toEqual([]);
    },
    60_000,
  );
});
