// Forwarding benchmark: the loopback limit, mailferry, Postfix, Haraka and the
// equal-work stack (Postfix + postsrsd + rspamd as a milter) side by side on
// this machine, back to back in one run (docs/benchmarks.md).
// Each tool forwards `anything@bench.test` to user@dest.test, delivered to the
// same Postfix smtp-sink; load comes from Postfix's smtp-source.
// With --nodes N, N mailferry nodes on one private PostgreSQL (docs/multi-node.md)
// take the load split across their ports, measured after single-node SQLite.
// Run: bench/run [--messages N] [--size BYTES] [--concurrency N] [--only a,b] [--nodes N] [--soak MINUTES]
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dkimpyVerify } from "../test/support/dkim-verify.ts";
import { startDnsServer } from "../test/support/dns-server.ts";
import { startPostgres } from "../test/support/postgres.ts";

const ROOT = join(import.meta.dir, "..");
const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "2000" },
    size: { type: "string", default: "10240" },
    concurrency: { type: "string", default: "20" },
    only: { type: "string" },
    probes: { type: "string", default: "200" },
    nodes: { type: "string", default: "1" },
    soak: { type: "string" },
  },
});
const MESSAGES = Number(values.messages);
const SIZE = Number(values.size);
const CONCURRENCY = Number(values.concurrency);
const PROBES = Number(values.probes);
const NODES = Number(values.nodes);
if (!Number.isInteger(NODES) || NODES < 1) throw new Error(`--nodes takes a whole number from 1, not ${values.nodes}`);
// Several nodes are compared with the one-node SQLite default; alone, every tool runs.
const ONLY = values.only ?? (NODES > 1 ? "mailferry" : "direct,mailferry,postfix,haraka,stack");
const AS_ROOT = process.getuid?.() === 0;
const work = mkdtempSync(join(tmpdir(), "mailferry-bench-"));
// smtp-sink runs as the postfix user when we are root: it must reach its dump dir.
chmodSync(work, 0o755);

const dns = await startDnsServer({
  "dest.test": { MX: [{ priority: 10, exchange: "sink.dest.test" }] },
  "sink.dest.test": { A: ["127.0.0.1"] },
  "src.test": { TXT: ["v=spf1 ip4:127.0.0.0/8 -all"] },
  "_dmarc.src.test": { TXT: ["v=DMARC1; p=none"] },
  "client.src.test": { A: ["127.0.0.1"] },
  "1.0.0.127.in-addr.arpa": { PTR: ["client.src.test"] },
});

// ---- processes and measurements ----------------------------------------------

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => (socket.destroy(), resolve(true)));
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await Bun.sleep(5);
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
}

function start(command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`[${command.split("/").pop()}] ${chunk}`));
  return child;
}

async function run(command: string, args: string[]): Promise<void> {
  const child = start(command, args);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}`);
}

/**
 * Memory of a process and all its descendants, in KB: the proportional set
 * size, so pages shared between Postfix's many processes count once.
 */
function treeRssKb(pids: number[]): number {
  let total = 0;
  const seen = new Set<number>();
  const stack = [...pids];
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    try {
      total += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
        if (children) stack.push(...children.split(" ").map(Number));
      }
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/**
 * CPU time of a process tree in ms: each process's own (all its threads) plus
 * that of the children it has reaped (Postfix's master reaps its daemons).
 */
function treeCpuMs(pids: number[]): number {
  const tick = 1000 / 100; // USER_HZ
  let total = 0;
  const stack = [...pids];
  const seen = new Set<number>();
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    try {
      // Fields after the command name (which may hold spaces): utime is the 14th field, then stime, cutime, cstime.
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
      total += fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) * tick;
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
        if (children) stack.push(...children.split(" ").map(Number));
      }
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** CPU time in ms of each thread of the (first) process, summed by thread name. */
function threadCpuMs(pids: number[]): Map<string, number> {
  const byName = new Map<string, number>();
  const pid = pids[0]!;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
      const name = /\((.*)\)/.exec(stat)?.[1] ?? task;
      const fields = stat.replace(/^.*\) /, "").split(" ");
      byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10);
    }
  } catch {
    // exited meanwhile
  }
  return byName;
}

/** The CPU each thread name spent between two readings, per message, leaving out the idle ones. */
function perMessage(after: Map<string, number>, before: Map<string, number>, messages: number): Record<string, number> {
  const spent = [...after].map(([name, ms]) => [name, round((ms - (before.get(name) ?? 0)) / messages)] as const);
  return Object.fromEntries(spent.filter(([, ms]) => ms >= 0.1).sort((a, b) => b[1] - a[1]));
}

function sampleRss(pids: () => number[]): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, treeRssKb(pids()))), 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, treeRssKb(pids()));
    },
  };
}

/** An empty dump directory smtp-sink (as the postfix user when we are root) can write to. */
function emptySinkDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (AS_ROOT) chmodSync(dir, 0o777);
}

/** smtp-sink writing each message to its own file, so deliveries are counted and timed. */
async function startSink(dir: string): Promise<{ port: number; child: ChildProcess; files(): string[] }> {
  emptySinkDir(dir);
  const port = await freePort();
  const child = start("smtp-sink", [...(AS_ROOT ? ["-u", "postfix"] : []), "-d", `${dir}/%H%M%S.`, "-m", "1024", `127.0.0.1:${port}`, "1024"]);
  await waitForPort(port);
  return { port, child, files: () => readdirSync(dir) };
}

async function waitFor(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await Bun.sleep(200);
  }
}

async function waitForCount(count: () => number, target: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (count() < target && Date.now() < deadline) await Bun.sleep(10);
  return performance.now();
}

/** A server run in the foreground, ready once its SMTP port answers (how long that took is `readyMs`); stopped with SIGTERM. */
async function startServer(command: string, args: string[], smtpPort: number, env: Record<string, string> = {}) {
  const spawned = performance.now();
  const child = start(command, args, env);
  await waitForPort(smtpPort);
  return {
    readyMs: performance.now() - spawned,
    pids: () => [child.pid!],
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.on("exit", resolve));
    },
  };
}

interface Running {
  pids(): number[];
  stop(): Promise<void>;
  readyMs?: number;
  /** Every port that takes the load (several nodes); default: the one it was started on. */
  smtpPorts?: number[];
  /** The processes of each part (each node, the database), to report their memory apart. */
  parts?: Record<string, () => number[]>;
}

interface Tool {
  name: string;
  start(smtpPort: number, sinkPort: number): Promise<Running>;
  /** What its copies must carry, checked on one copy with dkimpy (the tools that do the authentication work). */
  signs?: { arc: true; dkim: boolean };
}

// ---- the tools ----------------------------------------------------------------

const binary = join(ROOT, "dist/mailferry");
const mailferry: Tool = {
  name: "mailferry",
  async start(smtpPort, sinkPort) {
    const env = mailferryEnv(mkdtempSync(join(work, "mailferry-")), smtpPort, sinkPort);
    await addBenchDomain(env);
    // The first start makes the self-signed certificate (an RSA key, a few hundred ms);
    // the measured start is the next one, as after every restart or upgrade.
    await (await startServer(binary, ["serve"], smtpPort, env)).stop();
    return startServer(binary, ["serve"], smtpPort, env);
  },
  // The bench's From (sender@src.test, DMARC p=none) is kept: an ARC set, no DKIM signature of ours
  // (docs/delivery-and-authentication.md, "What mailferry signs, and why").
  signs: { arc: true, dkim: false },
};

function mailferryEnv(dataDir: string, smtpPort: number, sinkPort: number): Record<string, string> {
  return {
    MAILFERRY_DATA_DIR: dataDir,
    MAILFERRY_HOSTNAME: "mx.bench.test",
    MAILFERRY_SMTP_PORT: String(smtpPort),
    MAILFERRY_HTTP_PORT: "0",
    MAILFERRY_DNS_SERVERS: dns.address,
    MAILFERRY_OUTBOUND_PORT: String(sinkPort),
    MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
    MAILFERRY_GREYLIST_DELAY: "0",
    MAILFERRY_VERIFY_DESTINATIONS: "false",
    // No pause before the banner, as in Postfix's smtpd and Haraka by default.
    MAILFERRY_SMTP_GREET_PAUSE: "0",
    // One client IP sends everything: lift the per-sender limits meant for the internet.
    MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: "100000000",
    MAILFERRY_LIMITS_CONCURRENT_CONNECTIONS: "1000",
    MAILFERRY_LOG_LEVEL: "warn",
  };
}

/** bench.test forwarding everything to user@dest.test, its DKIM key published in the bench's DNS. */
async function addBenchDomain(env: Record<string, string>): Promise<void> {
  const cli = (args: string[]) => new Promise<void>((resolve, reject) => start(binary, args, env).on("exit", (c) => (c === 0 ? resolve() : reject(new Error(`mailferry ${args.join(" ")}: exit ${c}`)))));
  await cli(["domain", "add", "bench.test"]);
  await cli(["alias", "add", "bench.test", "*", "user@dest.test"]);
  publishDkimRecords(Bun.spawnSync([binary, "domain", "dns", "bench.test"], { env: { ...process.env, ...env } }).stdout.toString());
}

/**
 * `--nodes N`: N mailferry nodes on this machine sharing one private PostgreSQL
 * (test/support/postgres.ts: initdb as the postgres user, so the bench runs as
 * root), as N MX hosts of one domain would (docs/multi-node.md).
 */
function mailferryNodes(count: number): Tool {
  return {
    name: `mailferry-${count}-nodes`,
    async start(smtpPort, sinkPort) {
      const postgres = await startPostgres();
      const nodes: Running[] = [];
      const stop = async () => {
        for (const node of nodes) await node.stop();
        await postgres.stop();
      };
      try {
        const databaseUrl = await postgres.createDatabase();
        const ports = [smtpPort];
        while (ports.length < count) ports.push(await freePort());
        for (const [n, port] of ports.entries()) {
          const env = { ...mailferryEnv(mkdtempSync(join(work, `node-${n + 1}-`)), port, sinkPort), MAILFERRY_DATABASE_URL: databaseUrl, MAILFERRY_HOSTNAME: `mx${n + 1}.bench.test` };
          if (n === 0) await addBenchDomain(env);
          nodes.push(await startServer(binary, ["serve"], port, env));
        }
        const parts: Record<string, () => number[]> = { postgresql: () => [postgres.serverPid()] };
        nodes.forEach((node, n) => (parts[`node ${n + 1}`] = node.pids));
        return { smtpPorts: ports, parts, pids: () => Object.values(parts).flatMap((pids) => pids()), stop };
      } catch (err) {
        await stop();
        throw err;
      }
    },
    signs: mailferry.signs!,
  };
}

/** The _domainkey TXT records of `mailferry domain dns`, served by the bench's DNS (receivers check the copies against them). */
function publishDkimRecords(zoneText: string): void {
  for (const line of zoneText.split("\n")) {
    const record = /^(\S+\._domainkey\.\S+?)\.\s+\d+\s+IN\s+TXT\s+(.*)$/.exec(line);
    if (record) dns.zones[record[1]!.toLowerCase()] = { TXT: [[...record[2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join("")] };
  }
}

const postfix: Tool = { name: "postfix", start: (smtpPort, sinkPort) => startPostfix(smtpPort, sinkPort, "mx.pfbench.test") };

/** A virtual-alias forwarder from a private config directory (`postfix -c DIR start`); `extra` adds main.cf lines. */
async function startPostfix(smtpPort: number, sinkPort: number, hostname: string, extra: string[] = []) {
  const dir = mkdtempSync(join(work, "postfix-"));
  chmodSync(dir, 0o755);
  for (const sub of ["conf", "queue", "data"]) mkdirSync(join(dir, sub));
  if (AS_ROOT) await run("chown", ["postfix", join(dir, "data")]);
  writeFileSync(
    join(dir, "conf/main.cf"),
    [
      "compatibility_level = 3.6",
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      "mail_owner = postfix",
      `myhostname = ${hostname}`,
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      "mynetworks =",
      "mydestination =",
      // A forwarder: virtual aliases for the hosted domain, delivery to the sink.
      "virtual_alias_domains = bench.test",
      `virtual_alias_maps = texthash:${dir}/conf/virtual`,
      `transport_maps = texthash:${dir}/conf/transport`,
      "smtpd_relay_restrictions = reject_unauth_destination",
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      "smtpd_client_connection_count_limit = 0",
      "smtpd_client_connection_rate_limit = 0",
      "default_process_limit = 100",
      ...extra,
    ].join("\n") + "\n",
  );
  writeFileSync(join(dir, "conf/virtual"), "@bench.test user@dest.test\n");
  writeFileSync(join(dir, "conf/transport"), `dest.test smtp:[127.0.0.1]:${sinkPort}\n`);
  // Debian's master.cf with the smtpd on our port and no chroot (the private queue has no chroot files).
  const master = readFileSync("/etc/postfix/master.cf", "utf8")
    .split("\n")
    .map((line) => {
      if (!/^[^#\s]/.test(line)) return line;
      const f = line.split(/\s+/);
      if (f.length >= 8) f[4] = "n";
      if (f[0] === "smtp" && f[1] === "inet") f[0] = `127.0.0.1:${smtpPort}`;
      return f.join(" ");
    })
    .join("\n");
  writeFileSync(join(dir, "conf/master.cf"), master);
  // postfix reports start-up errors only to its log (or a terminal).
  await run("postfix", ["-c", `${dir}/conf`, "start"]).catch((err) => {
    throw new Error(`${err.message}\n${existsSync(`${dir}/maillog`) ? readFileSync(`${dir}/maillog`, "utf8") : "(no log)"}`);
  });
  await waitForPort(smtpPort);
  const masterPid = () => Number(readFileSync(`${dir}/queue/pid/master.pid`, "utf8").trim());
  return {
    pids: () => [masterPid()],
    stop: () => run("postfix", ["-c", `${dir}/conf`, "stop"]),
  };
}

const haraka: Tool = {
  name: "haraka",
  async start(smtpPort, sinkPort) {
    const bin = join(ROOT, "bench/.haraka/node_modules/.bin/haraka");
    const dir = join(work, "haraka");
    await run(bin, ["-i", dir]);
    const config = (name: string, text: string) => writeFileSync(join(dir, "config", name), text);
    config("smtp.ini", `listen=127.0.0.1:${smtpPort}\nnodes=0\n`);
    config("plugins", "aliases\nrcpt_to.in_host_list\nqueue/smtp_forward\n");
    config("host_list", "bench.test\n");
    config("aliases", JSON.stringify({ "@bench.test": { action: "alias", to: "user@dest.test" } }));
    config("smtp_forward.ini", `host=127.0.0.1\nport=${sinkPort}\nenable_tls=false\nenable_outbound=false\n`);
    config("log.ini", "[main]\nlevel=warn\n");
    return startServer(bin, ["-c", dir], smtpPort);
  },
};

/**
 * The stack self-hosters run to get what mailferry does (Debian packages, private
 * config and run directories): Postfix forwards, postsrsd rewrites the envelope
 * sender (SRS) through Postfix's tcp: tables, and rspamd's proxy worker in milter
 * mode checks SPF/DKIM/DMARC/ARC inbound and adds an ARC set and a DKIM signature
 * of the alias domain. rspamd skips its checks for mail from 127.0.0.1 unless
 * told (`check_local`), signs local mail only with `sign_local`, and everything
 * that would contact outside hosts is switched off.
 */
const stack: Tool = {
  name: "stack",
  async start(smtpPort, sinkPort) {
    for (const tool of ["rspamd", "/usr/sbin/postsrsd"]) if (!Bun.which(tool)) throw new Error(`the stack needs ${tool}: apt-get install rspamd postsrsd`);
    const dir = mkdtempSync(join(work, "stack-"));
    chmodSync(dir, 0o755);
    const started: (() => Promise<void>)[] = [];
    const stopAll = () => Promise.all(started.map((stop) => stop())).then(() => {});
    try {
      const srs = await startPostsrsd(dir, started);
      const rspamd = await startRspamdMilter(dir, started);
      const postfix = await startPostfix(smtpPort, sinkPort, "mx.stack.test", [
      // postsrsd's README: envelope senders out through the forward table, bounces back through the reverse one.
      `sender_canonical_maps = tcp:127.0.0.1:${srs.forwardPort}`,
      "sender_canonical_classes = envelope_sender",
      `recipient_canonical_maps = tcp:127.0.0.1:${srs.reversePort}`,
      "recipient_canonical_classes = envelope_recipient, header_recipient",
      `smtpd_milters = inet:127.0.0.1:${rspamd.milterPort}`,
      "milter_protocol = 6",
      "milter_default_action = tempfail",
      "milter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_authen}",
      ]);
      return {
        pids: () => [...postfix.pids(), srs.pid, rspamd.pid],
        async stop() {
          await postfix.stop();
          await stopAll();
        },
      };
    } catch (err) {
      await stopAll();
      throw err;
    }
  },
  signs: { arc: true, dkim: true },
};

/** A child stopped with SIGTERM, resolved once it exited. */
function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null) return;
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("exit", resolve));
  };
}

/** `started` gets its stop at once, so a later failure stops it too. */
async function startPostsrsd(dir: string, started: (() => Promise<void>)[]) {
  const [forwardPort, reversePort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, "srs.secret"), randomBytes(24).toString("base64") + "\n", { mode: 0o600 });
  const child = start("/usr/sbin/postsrsd", [`-s${dir}/srs.secret`, "-dmx.stack.test", "-l127.0.0.1", "-4", `-f${forwardPort}`, `-r${reversePort}`, ...(AS_ROOT ? ["-unobody"] : [])]);
  started.push(stopper(child));
  await waitForPort(forwardPort);
  await waitForPort(reversePort);
  return { forwardPort, reversePort, pid: child.pid! };
}

/** Modules that would contact hosts outside this machine (RBLs, fuzzy storage, map updates). */
const RSPAMD_OFF = ["fuzzy_check", "rbl", "surbl", "emails", "asn", "phishing", "url_redirector", "rspamd_update", "bimi", "dcc", "mx_check"];

async function startRspamdMilter(dir: string, started: (() => Promise<void>)[]) {
  const conf = join(dir, "rspamd");
  for (const sub of ["local.d", "override.d", "run", "db", "log"]) mkdirSync(join(conf, sub), { recursive: true });
  const [normal, controller, milterPort] = [await freePort(), await freePort(), await freePort()];
  const key = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "der" } });
  writeFileSync(join(conf, "dkim.key"), key.privateKey);
  dns.zones["stack._domainkey.bench.test"] = { TXT: [`v=DKIM1; k=rsa; p=${key.publicKey.toString("base64")}`] };
  const file = (name: string, text: string) => writeFileSync(join(conf, name), text);
  file("override.d/worker-normal.inc", `bind_socket = "127.0.0.1:${normal}";\n`);
  file("override.d/worker-controller.inc", `bind_socket = "127.0.0.1:${controller}";\n`);
  file("override.d/worker-proxy.inc", `bind_socket = "127.0.0.1:${milterPort}";\nmilter = yes;\ntimeout = 120s;\nupstream "local" {\n  default = yes;\n  hosts = "127.0.0.1:${normal}";\n}\ncount = 1;\n`);
  const log = join(conf, "log/rspamd.log");
  // Debian's level (info): its line about the compiled regular expressions tells when the scanner is ready.
  file("override.d/logging.inc", `type = "file"; filename = "${log}"; level = "info";\n`);
  file("local.d/options.inc", `dns {\n  nameserver = ["${dns.address}"];\n}\n`);
  // No action for any score: the bench measures forwarding, and mailferry does not scan by default either.
  file("local.d/actions.conf", "reject = 10000;\nadd_header = 10000;\ngreylist = 10000;\n");
  for (const module of ["spf", "dkim", "dmarc"]) file(`local.d/${module}.conf`, "check_local = true;\ncheck_authed = true;\n");
  // One key signs both, with the alias domain (the recipient's) as mailferry does; no redis.
  const signing = `sign_local = true;\nsign_inbound = true;\nuse_domain = "recipient";\nuse_esld = false;\nallow_hdrfrom_mismatch = true;\nuse_redis = false;\ndomain {\n  bench.test {\n    path = "${join(conf, "dkim.key")}";\n    selector = "stack";\n  }\n}\n`;
  file("local.d/arc.conf", signing);
  file("local.d/dkim_signing.conf", signing);
  for (const module of RSPAMD_OFF) file(`local.d/${module}.conf`, "enabled = false;\n");
  const vars = [`LOCAL_CONFDIR=${conf}`, `RUNDIR=${join(conf, "run")}`, `DBDIR=${join(conf, "db")}`, `LOGDIR=${join(conf, "log")}`].map((v) => `--var=${v}`);
  // -i: as root rspamd otherwise refuses to keep root privileges (and could not read its private run directory).
  const child = start("rspamd", ["-f", ...(AS_ROOT ? ["-i"] : []), "-c", "/etc/rspamd/rspamd.conf", ...vars]);
  started.push(stopper(child));
  // Loading the configuration and compiling its regular expressions (hyperscan, into the private
  // DBDIR: every run compiles afresh) takes about a minute on two busy cores.
  await waitForPort(milterPort, 180_000);
  await waitFor(() => existsSync(log) && /\(normal\)[^\n]*hyperscan_ready/.test(readFileSync(log, "utf8")), 180_000, "rspamd's scanner to load its compiled expressions");
  return { milterPort, pid: child.pid! };
}

/** The loopback limit: smtp-source straight into the sink. */
const direct: Tool = { name: "direct", start: async () => ({ pids: () => [], stop: async () => {} }) };

// ---- one measured run ----------------------------------------------------------

function smtpSource(port: number, count: number, concurrency: number): Promise<void> {
  return run("smtp-source", ["-s", String(concurrency), "-m", String(count), "-l", String(SIZE), "-f", "sender@src.test", "-t", "someone@bench.test", "-M", "client.src.test", `127.0.0.1:${port}`]);
}

/** `count` messages at `concurrency` in all, split evenly across the ports: one smtp-source per port, at once. */
function load(ports: number[], count: number, concurrency: number): Promise<void> {
  const share = (total: number, i: number) => Math.floor(total / ports.length) + (i < total % ports.length ? 1 : 0);
  return Promise.all(ports.map((port, i) => smtpSource(port, share(count, i), Math.max(1, share(concurrency, i))))).then(() => {});
}

/** Reads complete SMTP replies (the last line of a multi-line reply) one at a time. */
function replies(socket: net.Socket): () => Promise<string> {
  let buffered = "";
  let waiting: ((line: string) => void) | undefined;
  let failed: Error | undefined;
  const take = () => {
    const m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buffered);
    if (!m || !waiting) return;
    buffered = buffered.slice(m.index + m[0].length);
    const resolve = waiting;
    waiting = undefined;
    resolve(m[0].trim());
  };
  socket.on("data", (d) => ((buffered += d), take()));
  socket.on("error", (err) => (failed = err));
  return () =>
    new Promise((resolve, reject) => {
      if (failed) return reject(failed);
      waiting = resolve;
      take();
    });
}

/**
 * One message at a time: the latency a tool adds, from the end of DATA sent to
 * it to the file the sink wrote (the connection set-up before — banner,
 * EHLO, envelope — is not the forwarding's cost).
 * File times come from the kernel's coarse clock: a few ms of resolution.
 */
async function probeLatency(port: number, sinkDir: string, count: number): Promise<number[]> {
  const body = "x".repeat(76) + "\r\n";
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const before = new Set(readdirSync(sinkDir));
    const socket = net.connect(port, "127.0.0.1");
    const reply = replies(socket);
    await reply();
    for (const line of ["EHLO client.src.test", "MAIL FROM:<sender@src.test>", "RCPT TO:<probe@bench.test>", "DATA"]) {
      socket.write(`${line}\r\n`);
      const answer = await reply();
      if (!/^[23]/.test(answer)) throw new Error(`probe ${i}: ${line} answered ${answer}`);
    }
    socket.write(`From: <sender@src.test>\r\nTo: <probe@bench.test>\r\nSubject: probe ${i}\r\nMessage-ID: <probe-${i}-${process.pid}@src.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body.repeat(Math.ceil(SIZE / body.length))}.\r\n`);
    const sent = Date.now();
    const answer = await reply();
    if (!answer.startsWith("250")) throw new Error(`probe ${i}: DATA answered ${answer}`);
    socket.end("QUIT\r\n");
    let arrived: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!arrived && Date.now() < deadline) {
      arrived = readdirSync(sinkDir).find((f) => !before.has(f));
      if (!arrived) await Bun.sleep(1);
    }
    if (!arrived) throw new Error(`probe ${i} never reached the sink`);
    latencies.push(statSync(join(sinkDir, arrived)).mtimeMs - sent);
  }
  return latencies.sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

interface Result {
  tool: string;
  messages: number;
  accepted_per_s: number;
  delivered_per_s: number;
  delivered: number;
  duplicates: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  peak_pss_mb: number;
  /** CPU time of the tool's processes during the timed run, per message delivered. */
  cpu_ms_per_message: number;
  /** The same, per thread name of a single-process tool (mailferry: main thread, worker, Bun's helpers). */
  cpu_ms_per_message_by_thread?: Record<string, number>;
  /** From the spawn of a single-process server to its SMTP port answering (mailferry: a restart, see its start()). */
  ready_ms?: number;
  /** PSS of the processes one second after start, before any mail. */
  idle_pss_mb: number;
  /** Peak PSS of each part (several nodes: each node and PostgreSQL). */
  peak_pss_mb_by_part?: Record<string, number>;
  /** What dkimpy found on one delivered copy (the tools that sign). */
  copy?: CopyCheck;
}

interface CopyCheck {
  envelope_sender: string;
  arc: string;
  dkim: string;
}

/** One delivered copy (smtp-sink's dump: its X-Mail-Args line is the envelope sender) checked with dkimpy against the bench's DNS. */
async function checkCopy(sinkDir: string, tool: Tool): Promise<CopyCheck> {
  const [first] = readdirSync(sinkDir);
  if (!first) throw new Error(`${tool.name}: no copy to check`);
  const raw = readFileSync(join(sinkDir, first));
  const sender = /^X-Mail-Args: <([^>]*)>/m.exec(raw.toString("latin1"))?.[1] ?? "";
  const verdict = await dkimpyVerify(raw, dns);
  const signed = /^DKIM-Signature:/im.test(raw.toString("latin1"));
  const check = { envelope_sender: sender, arc: verdict.arc, dkim: !signed ? "none" : verdict.pass ? `pass (d=${verdict.domain})` : "fail" };
  const problems = [
    !/^SRS0[=+-]/i.test(sender) && "no SRS0 envelope sender",
    verdict.arc !== "pass" && `ARC ${verdict.arc}`,
    tool.signs!.dkim && check.dkim !== "pass (d=bench.test)" && `DKIM ${check.dkim}`,
    !tool.signs!.dkim && signed && "a DKIM signature it should not have",
  ].filter(Boolean);
  if (problems.length) throw new Error(`${tool.name}'s copy: ${problems.join(", ")} (${join(sinkDir, first)})`);
  return check;
}

/** Message-IDs of the dumped messages, to find losses and duplicates. */
function messageIds(dir: string): string[] {
  return readdirSync(dir).map((f) => /^Message-Id:\s*(\S+)/im.exec(readFileSync(join(dir, f), "latin1"))?.[1] ?? f);
}

async function measure(tool: Tool): Promise<Result> {
  const sinkDir = join(work, `sink-${tool.name}`);
  const sink = await startSink(sinkDir);
  const smtpPort = tool === direct ? sink.port : await freePort();
  const running = await tool.start(smtpPort, sink.port).catch((err) => {
    sink.child.kill("SIGTERM");
    throw err;
  });
  await Bun.sleep(1000);
  const idlePssMb = round(treeRssKb(running.pids()) / 1024);
  const rss = sampleRss(() => running.pids());
  const partRss = Object.entries(running.parts ?? {}).map(([name, pids]) => [name, sampleRss(pids)] as const);
  const ports = running.smtpPorts ?? [smtpPort];
  try {
    // Warm up (JIT, caches, connection set-up), then clear the sink.
    await load(ports, 50, 5);
    await waitForCount(() => sink.files().length, 50, 30_000);
    emptySinkDir(sinkDir);

    const cpuBefore = treeCpuMs(running.pids());
    const threadsBefore = threadCpuMs(running.pids());
    const t0 = performance.now();
    await load(ports, MESSAGES, CONCURRENCY);
    const accepted = performance.now();
    const delivered = await waitForCount(() => sink.files().length, MESSAGES, 120_000);
    const cpuMs = treeCpuMs(running.pids()) - cpuBefore;
    const byThread = perMessage(threadCpuMs(running.pids()), threadsBefore, MESSAGES);
    await Bun.sleep(1000); // late duplicates would show up here
    const ids = messageIds(sinkDir);
    const unique = new Set(ids).size;
    const copy = tool.signs ? await checkCopy(sinkDir, tool) : undefined;
    emptySinkDir(sinkDir);
    const latencies = await probeLatency(smtpPort, sinkDir, PROBES);
    return {
      tool: tool.name,
      messages: MESSAGES,
      accepted_per_s: round(MESSAGES / ((accepted - t0) / 1000)),
      delivered_per_s: round(unique / ((delivered - t0) / 1000)),
      delivered: unique,
      duplicates: ids.length - unique,
      latency_p50_ms: round(quantile(latencies, 0.5)),
      latency_p99_ms: round(quantile(latencies, 0.99)),
      peak_pss_mb: round(rss.stop() / 1024),
      cpu_ms_per_message: round(cpuMs / Math.max(1, unique)),
      ...(running.pids().length === 1 && running.readyMs !== undefined ? { cpu_ms_per_message_by_thread: byThread, ready_ms: round(running.readyMs) } : {}),
      idle_pss_mb: idlePssMb,
      ...(partRss.length ? { peak_pss_mb_by_part: Object.fromEntries(partRss.map(([name, sampler]) => [name, round(sampler.stop() / 1024)])) } : {}),
      ...(copy ? { copy } : {}),
    };
  } finally {
    rss.stop();
    for (const [, sampler] of partRss) sampler.stop();
    await running.stop();
    sink.child.kill("SIGTERM");
  }
}

const round = (n: number) => Math.round(n * 10) / 10;

// ---- soak: memory over time under steady load ----------------------------------

async function soak(minutes: number): Promise<void> {
  const sinkDir = join(work, "sink-soak");
  const sink = await startSink(sinkDir);
  const smtpPort = await freePort();
  const running = await mailferry.start(smtpPort, sink.port);
  const end = Date.now() + minutes * 60_000;
  const samples: { minute: number; pss_mb: number; delivered: number }[] = [];
  let delivered = 0;
  try {
    while (Date.now() < end) {
      await smtpSource(smtpPort, 500, CONCURRENCY);
      await waitForCount(() => sink.files().length, 500, 30_000);
      const batch = sink.files().length;
      if (batch !== 500) throw new Error(`soak: a batch of 500 delivered ${batch}`);
      delivered += batch;
      emptySinkDir(sinkDir);
      const minute = round((minutes * 60_000 - (end - Date.now())) / 60_000);
      samples.push({ minute, pss_mb: round(treeRssKb(running.pids()) / 1024), delivered });
      console.log(`soak ${minute.toFixed(1)} min: pss ${samples.at(-1)!.pss_mb} MB, delivered ${delivered}`);
    }
  } finally {
    await running.stop();
    sink.child.kill("SIGTERM");
  }
  save("soak", { minutes, samples });
}

// ---- report ---------------------------------------------------------------------

function machine() {
  return { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gb: round(totalmem() / 1024 ** 3), kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim() };
}

function save(kind: string, data: object): void {
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: machine(), ...data }, null, 2) + "\n");
  console.log(`written ${file}`);
}

try {
  if (!existsSync(binary)) throw new Error("dist/mailferry is missing: bench/run builds it");
  if (values.soak) {
    await soak(Number(values.soak));
  } else {
    const nodes = mailferryNodes(NODES);
    const tools: Record<string, Tool> = { direct, mailferry, postfix, haraka, stack, [nodes.name]: nodes };
    const results: Result[] = [];
    for (const name of new Set([...ONLY.split(","), ...(NODES > 1 ? [nodes.name] : [])])) {
      const tool = tools[name];
      if (!tool) throw new Error(`unknown tool ${name}`);
      console.log(`measuring ${name} ...`);
      results.push(await measure(tool));
    }
    const base = results.find((r) => r.tool === "direct");
    const added = (r: Result, key: "latency_p50_ms" | "latency_p99_ms") => (base && r !== base ? round(r[key] - base[key]) : null);
    console.table(results.map(({ copy, cpu_ms_per_message_by_thread, peak_pss_mb_by_part, ...r }) => ({ ...r, added_p50_ms: added(r, "latency_p50_ms"), added_p99_ms: added(r, "latency_p99_ms") })));
    for (const r of results) if (r.cpu_ms_per_message_by_thread) console.log(`${r.tool} CPU ms per message by thread:`, r.cpu_ms_per_message_by_thread);
    for (const r of results) if (r.peak_pss_mb_by_part) console.log(`${r.tool} peak PSS by part (MB):`, r.peak_pss_mb_by_part);
    for (const r of results) if (r.copy) console.log(`${r.tool}'s copy (dkimpy): envelope ${r.copy.envelope_sender}, ARC ${r.copy.arc}, DKIM ${r.copy.dkim}`);
    const byName = Object.fromEntries(results.map((r) => [r.tool, r]));
    const ratio = (one: string, other: string) => (byName[one] && byName[other] ? Number((byName[one].delivered_per_s / byName[other].delivered_per_s).toFixed(2)) : null);
    const ratios = { mailferry_vs_postfix: ratio("mailferry", "postfix"), mailferry_vs_haraka: ratio("mailferry", "haraka"), mailferry_vs_stack: ratio("mailferry", "stack"), ...(NODES > 1 ? { [`${nodes.name}_vs_mailferry`]: ratio(nodes.name, "mailferry") } : {}) };
    console.log("delivered/s ratios:", ratios);
    save("forward", { settings: { messages: MESSAGES, size: SIZE, concurrency: CONCURRENCY, probes: PROBES, nodes: NODES }, results, ratios });
  }
} finally {
  await dns.close();
  rmSync(work, { recursive: true, force: true });
}
