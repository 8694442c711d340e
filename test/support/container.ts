// A fresh Debian bookworm booted under its own systemd, for tests of the server
// install: debootstrap builds the root file system once (cached as a tarball
// outside the checkout, so fresh clones reuse it), each run extracts a copy,
// systemd-nspawn boots it and nsenter runs commands inside. The container shares
// the host's network namespace (nspawn's default): its services listen on the
// host's loopback, where the test's DNS server and sinks are.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { run, type Run } from "./smoke.ts";

const SUITE = "bookworm";
/** What a small VPS image has beyond the minimal base: systemd as init, D-Bus, iproute2. */
const PACKAGES = ["systemd", "systemd-sysv", "dbus", "iproute2"];
const CACHE_DIR = "/var/cache/mailferry-test";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Why the container tests cannot run here, or null when they can. */
export function containerUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root (debootstrap and systemd-nspawn need root)";
  for (const tool of ["debootstrap", "systemd-nspawn", "nsenter", "tar"]) {
    if (Bun.which(tool, { PATH }) === null) return `${tool} is not installed (apt-get install debootstrap systemd-container)`;
  }
  if (debianMirror() === null) return `no Debian mirror for ${SUITE} in /etc/apt/sources.list(.d)`;
  return null;
}

/**
 * The mirror URL the host's APT uses for the bookworm suite: deb822 `.sources`
 * stanzas (URIs/Suites) or one-line `deb URL bookworm …` entries.
 */
export function debianMirror(): string | null {
  const dir = "/etc/apt/sources.list.d";
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  for (const file of ["/etc/apt/sources.list", ...files]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    const found = file.endsWith(".sources") ? mirrorInStanzas(text) : mirrorInLines(text);
    if (found) return found;
  }
  return null;
}

function mirrorInStanzas(text: string): string | null {
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => stanza.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1]?.trim().split(/\s+/) ?? [];
    if (field("Types").includes("deb") && field("Suites").includes(SUITE) && field("URIs")[0]) return field("URIs")[0]!;
  }
  return null;
}

function mirrorInLines(text: string): string | null {
  for (const line of text.split("\n")) {
    const [type, ...rest] = line.replace(/\[[^\]]*\]/, "").trim().split(/\s+/);
    if (type === "deb" && rest[1] === SUITE && rest[0]) return rest[0];
  }
  return null;
}

/** The cached tarball's name changes with the suite and the package list, so a change rebuilds it. */
function cachedTarball(): string {
  const key = createHash("sha256").update(`${SUITE} ${PACKAGES.join(",")}`).digest("hex").slice(0, 12);
  return join(CACHE_DIR, `debian-${SUITE}-${key}.tar`);
}

/** Whether the root file system tarball is cached already (else rootfsTarball runs debootstrap). */
export const rootfsCached = () => existsSync(cachedTarball());

/** The root file system tarball: from the cache, else built with debootstrap and cached. */
export async function rootfsTarball(): Promise<string> {
  const tarball = cachedTarball();
  if (existsSync(tarball)) return tarball;
  mkdirSync(CACHE_DIR, { recursive: true });
  const work = mkdtempSync(join(CACHE_DIR, "build-"));
  try {
    const dir = join(work, "root");
    await must(["debootstrap", "--variant=minbase", `--include=${PACKAGES.join(",")}`, SUITE, dir, debianMirror()!], 1_200_000);
    // Written beside, then renamed: a run killed half-way leaves no truncated cache.
    await must(["tar", "--numeric-owner", "-C", dir, "-cf", `${tarball}.part`, "."], 300_000);
    renameSync(`${tarball}.part`, tarball);
  } finally {
    await removeTree(work);
  }
  return tarball;
}

async function must(command: string[], timeoutMs: number): Promise<Run> {
  const result = await run(command, { cwd: "/", env: { PATH }, timeoutMs });
  if (result.exitCode !== 0) throw new Error(`${command.join(" ")} failed (exit ${result.exitCode}):\n${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}`);
  return result;
}

/**
 * Removes a container tree, never crossing into another file system: if a mount
 * were left below it, rm stays out of it instead of deleting what it shows.
 */
async function removeTree(dir: string): Promise<void> {
  const mounted = readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((line) => line.split(" ")[4]?.startsWith(`${dir}/`));
  if (mounted) throw new Error(`${dir} still has mounts below it; not removed`);
  await must(["rm", "-rf", "--one-file-system", dir], 300_000);
}

export interface Container {
  dir: string;
  /** The container's init (its PID 1) as the host sees it. */
  initPid: number;
  /** Runs a bash command line inside, as root in /root, with a clean environment. */
  sh(command: string, timeoutMs?: number): Promise<Run>;
  /** What systemd-nspawn printed (the boot console): for failure messages. */
  console(): string;
  /** Powers off, waits for nspawn to end (killed after a bound) and removes the tree. */
  destroy(): Promise<void>;
}

/** Extracts a copy of the tarball under `parent` and boots it; resolves once systemd finished booting. */
export async function bootContainer(tarball: string, parent: string): Promise<Container> {
  const dir = mkdtempSync(join(parent, "mailferry-vps-"));
  await must(["tar", "--numeric-owner", "-C", dir, "-xpf", tarball], 300_000);
  let output = "";
  const nspawn = Bun.spawn(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--machine=vps", "-D", dir, "-b"], {
    env: { PATH },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  for (const stream of [nspawn.stdout, nspawn.stderr]) {
    void (async () => {
      for await (const chunk of stream) output += Buffer.from(chunk).toString("utf8");
    })();
  }
  const container: Container = {
    dir,
    initPid: 0,
    sh: (command, timeoutMs = 120_000) =>
      run(["nsenter", "-t", String(container.initPid), "-a", "--", "/usr/bin/env", "-i", `PATH=${PATH}`, "HOME=/root", "LANG=C.UTF-8", "/bin/bash", "-c", `cd /root && ${command}`], {
        cwd: "/",
        timeoutMs,
      }),
    console: () => output,
    destroy: async () => {
      if (container.initPid) await container.sh("systemctl poweroff", 10_000).catch(() => undefined);
      const ended = await Promise.race([nspawn.exited.then(() => true), Bun.sleep(30_000).then(() => false)]);
      if (!ended) {
        // Killed alone, nspawn would leave the container running: killing its init ends its PID namespace.
        if (container.initPid && parentOf(container.initPid) === nspawn.pid) process.kill(container.initPid, "SIGKILL");
        nspawn.kill("SIGKILL");
        await nspawn.exited;
      }
      await removeTree(dir);
    },
  };
  try {
    container.initPid = await initPidOf(nspawn.pid, 30_000);
    const state = await bootedState(container, 120_000);
    if (state !== "running" && state !== "degraded") throw new Error(`the container did not boot: ${state}\n${output.slice(-3000)}`);
    return container;
  } catch (error) {
    await container.destroy().catch(() => undefined);
    throw error;
  }
}

/**
 * systemd's state once the boot is done (running, degraded, …). systemctl cannot
 * connect until the manager has opened its socket, so it is asked again until it answers.
 */
async function bootedState(container: Container, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    const result = await container.sh("systemctl is-system-running --wait", until - Date.now());
    const state = result.stdout.trim();
    if (state) return state;
    last = result.stderr.trim();
    await Bun.sleep(200);
  }
  return `no answer from systemctl within ${timeoutMs / 1000} s (${last})`;
}

/** The descendant of nspawn that is PID 1 of a new PID namespace: the container's init. */
async function initPidOf(nspawnPid: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const init = descendants(nspawnPid).find(isNamespaceInit);
    if (init) return init;
    await Bun.sleep(100);
  }
  throw new Error(`no systemd started by systemd-nspawn (pid ${nspawnPid}) within ${timeoutMs / 1000} s`);
}

/** Whether `pid` is systemd running as PID 1 of a PID namespace below the host's. */
function isNamespaceInit(pid: number): boolean {
  try {
    const nsPids = readFileSync(`/proc/${pid}/status`, "utf8").match(/^NSpid:\s*(.+)$/m)?.[1]?.trim().split(/\s+/) ?? [];
    return nsPids.length > 1 && nsPids.at(-1) === "1" && readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd";
  } catch {
    return false; // it has ended
  }
}

function parentOf(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/^PPid:\s*(\d+)$/m)?.[1]);
  } catch {
    return null; // it has ended
  }
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const next = queue.shift()!;
    let children: number[] = [];
    try {
      for (const task of readdirSync(`/proc/${next}/task`)) {
        children.push(...readFileSync(`/proc/${next}/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {
      children = []; // the process ended meanwhile
    }
    out.push(...children);
    queue.push(...children);
  }
  return out;
}
