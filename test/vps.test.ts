// A fresh VPS, for real: Debian bookworm booted under its own systemd
// (systemd-nspawn), and the server install of docs/install.md followed in it:
// install.sh → the service active → the printed DNS records served by a DNS
// server → an alias added with the CLI → a message sent to port 25 arrives at
// the destination MX with an SRS sender, a DKIM signature and an ARC set (checked
// by dkimpy) → an upgrade to a new release keeps the data and the service →
// --uninstall keeps the data. Each phase's duration is printed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary } from "./support/build.ts";
import { bootContainer, type Container, containerUnavailable, rootfsCached, rootfsTarball } from "./support/container.ts";
import { dkimpyVerify, hasDkimpy } from "./support/dkim-verify.ts";
import { type DnsServer, type NameRecords, startDnsServer, type Zones } from "./support/dns-server.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { sendMail } from "./support/smtp-client.ts";
import { run } from "./support/smoke.ts";

const CHECKOUT = join(import.meta.dir, "..");
const HOST = "mx.example.test";
const DOMAIN = "example.test";
/** The install command of docs/install.md, run in /root where the three files were copied. */
const INSTALL = `bash install.sh --binary ./mailferry --hostname ${HOST} --domain ${DOMAIN} --admin-email admin@${DOMAIN} --non-interactive`;
/** The CLI on the server, as the documentation's shell alias defines it. */
const MAILFERRY = "runuser -u mailferry -- env MAILFERRY_DATA_DIR=/var/lib/mailferry MAILFERRY_CONFIG=/etc/mailferry/config.toml /usr/local/bin/mailferry";
/** The ports the installed service takes on the shared network namespace (the MX and the admin port). */
const SERVICE_PORTS = [25, 8080];

const unavailable = containerUnavailable() ?? (await portsInUse(SERVICE_PORTS));
if (unavailable) console.warn(`\n*** the fresh-VPS test (test/vps.test.ts) is SKIPPED: ${unavailable} ***\n`);

let vps: Container;
let dns: DnsServer;
let sink: Sink;
let binary: string;
/** The install.sh output of the first install. */
let installed: string;
const scratch: string[] = [];
const phases: [string, number][] = [];

/** Runs `step` and records how long it took under `name`. */
async function timed<T>(name: string, step: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await step();
  } finally {
    const seconds = (performance.now() - start) / 1000;
    phases.push([name, seconds]);
    console.log(`vps: ${name}: ${seconds.toFixed(1)} s`);
  }
}

describe.skipIf(unavailable !== null)("a fresh Debian VPS under systemd", () => {
  beforeAll(async () => {
    binary = await timed("build the binary (npm run build, when stale)", compiledBinary);
    const tarball = await timed(rootfsCached() ? "root file system: from the cache" : "root file system: debootstrap from scratch, then cached", rootfsTarball);
    vps = await timed("extract a copy and boot it (systemd-nspawn -b)", () => bootContainer(tarball, "/var/tmp"));
    dns = await startDnsServer({});
    sink = await startSink();
  }, 1_500_000);

  afterAll(async () => {
    await vps?.destroy();
    await dns?.close();
    await sink?.close();
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    if (phases.length) console.log(`\nvps: timings\n${phases.map(([name, s]) => `  ${s.toFixed(1).padStart(6)} s  ${name}`).join("\n")}\n`);
  }, 120_000);

  /** A command inside the container; its output in the failure message when it fails. */
  async function inside(command: string, timeoutMs?: number): Promise<string> {
    const result = await vps.sh(command, timeoutMs);
    if (result.exitCode !== 0) throw new Error(`in the container, \`${command}\` failed (exit ${result.exitCode}):\n${result.stdout}${result.stderr}`);
    return result.stdout;
  }

  const serviceState = async () => (await vps.sh("systemctl is-active mailferry")).stdout.trim();
  const mainPid = async () => (await inside("systemctl show -p MainPID --value mailferry")).trim();
  const healthz = async () => (await fetch("http://127.0.0.1:8080/healthz")).json() as Promise<{ status: string; version: string }>;

  test("install.sh installs mailferry and systemd runs it as its own user", async () => {
    for (const file of [binary, join(CHECKOUT, "install.sh"), join(CHECKOUT, "systemd/mailferry.service")]) copyFileSync(file, join(vps.dir, "root", file.split("/").at(-1)!));
    installed = await timed("install.sh (first install, service started)", () => inside(INSTALL, 180_000));
    expect(await serviceState()).toBe("active");
    expect((await vps.sh("systemctl is-enabled mailferry")).stdout.trim()).toBe("enabled");
    expect(installed).toContain(`${DOMAIN}. 3600 IN MX 10 ${HOST}.`);
    expect(installed).toMatch(/http:\/\/127\.0\.0\.1:8080\/setup\?token=\S+/);
    // The process systemd started runs as mailferry, with only CAP_NET_BIND_SERVICE.
    const status = await inside(`cat /proc/${await mainPid()}/status`);
    const uid = (await inside("id -u mailferry")).trim();
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, "m"));
    expect(status).toMatch(/^CapEff:\s+0000000000000400$/m);
    expect(await healthz()).toMatchObject({ status: "ok" });
    // systemd accepted every line of the unit and its sandboxing (it logs what it ignores or cannot apply).
    expect(await inside("journalctl --sync && journalctl -b --no-pager -o cat _PID=1 -p warning | grep -i mailferry || true")).toBe("");
  }, 240_000);

  test("with the printed DNS records published, a message to port 25 arrives with SRS and ARC (its From untouched, so no DKIM signature of ours)", async () => {
    dns.zones = { ...zonesFrom(installed), ...theInternet() };
    await timed("configure (config set, restart) and add an alias", async () => {
      // Pointing DNS and outbound delivery at the test's servers is what a real VPS gets from its network.
      await inside(`${MAILFERRY} config set dns.servers=${dns.address} outbound.port=${sink.port} outbound.allow_private=true greylist.delay=2s`);
      await inside("systemctl restart mailferry");
      expect(await serviceState()).toBe("active");
      expect(await inside(`${MAILFERRY} alias add ${DOMAIN} hello bob@gmail.test`)).toContain("hello -> bob@gmail.test");
    });
    // doctor, run as the documentation says, finds nothing wrong with what install.sh and systemd made.
    const doctor = await vps.sh(`${MAILFERRY} doctor`, 60_000);
    console.log(`vps: mailferry doctor:\n${doctor.stdout}`);
    expect(doctor).toMatchObject({ exitCode: 0, stderr: "" });
    expect(doctor.stdout).toMatch(/^✓ data dir: /m);
    expect(doctor.stdout).toMatch(/^✓ database: /m);
    const replies = await timed("delivery (port 25 to the destination MX)", async () => {
      const replies = await sendUntilAccepted("hello@example.test", "first");
      await sink.waitForMessages(1, 30_000);
      return replies;
    });
    console.log(`vps: SMTP replies until accepted: ${replies.join(" | ")}`);
    const [copy] = sink.messages;
    expect(copy!.rcptTo).toEqual(["bob@gmail.test"]);
    expect(copy!.mailFrom).toMatch(/^SRS0=[^@]+=origin\.test=someone@mx\.example\.test$/);
    const raw = copy!.raw.toString();
    expect(raw).not.toMatch(/^DKIM-Signature:/m);
    expect(raw).toMatch(/^ARC-Seal: i=1;[^]*?\bd=example\.test;/m);
    if (hasDkimpy) {
      expect(await dkimpyVerify(copy!.raw, dns)).toMatchObject({ arc: "pass" });
    } else {
      console.warn("\n*** python3-dkim is NOT installed: the forwarded copy's DKIM and ARC are not verified by dkimpy. Install it: apt-get install python3-dkim ***\n");
    }
  }, 180_000);

  test("install.sh again with the same binary leaves the running service alone", async () => {
    const pidBefore = await mainPid();
    const again = await timed("install.sh again (nothing to change)", () => inside(INSTALL, 180_000));
    expect(again).toContain("kept /usr/local/bin/mailferry (up to date)");
    expect(again).toContain("kept /etc/systemd/system/mailferry.service (up to date)");
    expect(again).not.toContain("systemctl restart");
    expect(await mainPid()).toBe(pidBefore);
  }, 240_000);

  test("install.sh with a new release upgrades: the new binary runs, the data and the service stay", async () => {
    const dnsBefore = await inside(`${MAILFERRY} domain dns ${DOMAIN}`);
    const pidBefore = await mainPid();
    const release = await timed("build a new release (version 0.0.0-upgrade)", () => buildRelease("0.0.0-upgrade"));
    copyFileSync(release, join(vps.dir, "root/mailferry"));
    const upgrade = await timed("install.sh (upgrade, service restarted)", () => inside(INSTALL, 180_000));
    expect(upgrade).toContain("+ mv -f /usr/local/bin/mailferry.new /usr/local/bin/mailferry");
    expect(upgrade).toContain("kept /etc/mailferry/config.toml");
    expect(upgrade).toContain(`kept domain ${DOMAIN}`);
    expect(await serviceState()).toBe("active");
    expect(await mainPid()).not.toBe(pidBefore);
    expect(await healthz()).toMatchObject({ status: "ok", version: "0.0.0-upgrade" });
    // Same keys, same alias, same settings: the second message needs no new DNS and goes through.
    expect(await inside(`${MAILFERRY} domain dns ${DOMAIN}`)).toBe(dnsBefore);
    expect(await inside(`${MAILFERRY} alias list ${DOMAIN}`)).toContain("bob@gmail.test");
    await sendUntilAccepted("hello@example.test", "after the upgrade");
    await sink.waitForMessages(2, 30_000);
    expect(sink.messages[1]!.raw.toString()).toContain("Subject: after the upgrade");
  }, 240_000);

  test("install.sh --uninstall stops the service and removes it, and keeps the data and the configuration", async () => {
    const removed = await timed("install.sh --uninstall", () => inside("bash install.sh --uninstall", 120_000));
    expect(removed).toContain("kept /var/lib/mailferry (the data)");
    expect(await serviceState()).not.toBe("active");
    expect(await portsInUse([25])).toBeNull();
    expect(existsSync(join(vps.dir, "usr/local/bin/mailferry"))).toBe(false);
    expect(existsSync(join(vps.dir, "etc/systemd/system/mailferry.service"))).toBe(false);
    expect(statSync(join(vps.dir, "var/lib/mailferry/mailferry.db")).size).toBeGreaterThan(0);
    expect(readFileSync(join(vps.dir, "etc/mailferry/config.toml"), "utf8")).toContain(`hostname = "${HOST}"`);
  }, 180_000);
});

/**
 * Sends a message from a new sender until the MX accepts it: greylisting answers
 * the first try with 4xx, as it does a real first-time sender. The replies, in order.
 */
async function sendUntilAccepted(to: string, subject: string): Promise<string[]> {
  const replies: string[] = [];
  const raw = `From: Someone <someone@origin.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${crypto.randomUUID()}@origin.test>\r\n\r\nHello from a fresh VPS test.\r\n`;
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      const info = await sendMail(25, { from: "someone@origin.test", to, raw });
      replies.push(String(info.response));
      return replies;
    } catch (error) {
      const { responseCode, response } = error as { responseCode?: number; response?: string };
      replies.push(String(response ?? error));
      if (!responseCode || responseCode >= 500 || Date.now() > until) throw new Error(`port 25 did not accept the message: ${replies.join(" | ")}`);
      await Bun.sleep(1000);
    }
  }
}

/** The zone-file lines install.sh printed (`name. ttl IN TYPE data`), as the DNS server's zones. */
function zonesFrom(output: string): Zones {
  const zones: Zones = {};
  for (const line of output.split("\n")) {
    const match = line.match(/^(\S+)\.\s+\d+\s+IN\s+(MX|TXT|CNAME)\s+(.+)$/);
    if (!match) continue;
    const [, name, type, data] = match as unknown as [string, string, string, string];
    const records: NameRecords = (zones[name.toLowerCase()] ??= {});
    if (type === "MX") {
      const [priority, exchange] = data.split(/\s+/);
      (records.MX ??= []).push({ priority: Number(priority), exchange: exchange!.replace(/\.$/, "") });
    } else if (type === "TXT") {
      (records.TXT ??= []).push([...data.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!));
    } else {
      records.CNAME = data.replace(/\.$/, "");
    }
  }
  return zones;
}

/**
 * What the rest of the world publishes: the server's address and its PTR (which
 * docs/install.md asks for), the sender's domain (SPF allows loopback) and the
 * destination domains, whose MX is the sink on loopback.
 */
function theInternet(): Zones {
  return {
    [HOST]: { A: ["127.0.0.1"] },
    "1.0.0.127.in-addr.arpa": { PTR: [HOST] },
    "origin.test": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
    // doctor's outbound check connects to the MX of gmail.com.
    "gmail.com": { MX: [{ priority: 10, exchange: "mx.gmail.test" }] },
    "gmail.test": { MX: [{ priority: 10, exchange: "mx.gmail.test" }] },
    "mx.gmail.test": { A: ["127.0.0.1"] },
  };
}

/** The binary built from a copy of the checkout whose package.json says `version`: a new release. */
async function buildRelease(version: string): Promise<string> {
  const copy = mkdtempSync(join(tmpdir(), "mailferry-release-"));
  scratch.push(copy);
  for (const path of ["src", "views", "tsconfig.json"]) cpSync(join(CHECKOUT, path), join(copy, path), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(CHECKOUT, "package.json"), "utf8"));
  writeFileSync(join(copy, "package.json"), JSON.stringify({ ...pkg, version }));
  symlinkSync(join(CHECKOUT, "node_modules"), join(copy, "node_modules"));
  const build = await run(["npm", "run", "--silent", "build"], { cwd: copy, timeoutMs: 180_000 });
  if (build.exitCode !== 0) throw new Error(`building the new release failed:\n${build.stdout}${build.stderr}`);
  return join(copy, "dist/mailferry");
}

/** Why the service's ports cannot be used (one is already taken on the host), or null. */
async function portsInUse(ports: number[]): Promise<string | null> {
  for (const port of ports) {
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "0.0.0.0", () => resolve(true));
    });
    if (!free) return `port ${port} is in use on this machine (the container shares its network; stop what listens there, e.g. postfix)`;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return null;
}
