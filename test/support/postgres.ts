// A private PostgreSQL (Debian's package) for the tests of the PostgreSQL
// dialect: a cluster made by initdb in a temporary directory owned by the
// `postgres` user, listening on a free loopback port, stopped and removed by
// stop(). Each test file gets fresh databases from createDatabase().
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export interface Postgres {
  /** A new, empty database; its postgres:// URL. */
  createDatabase(): Promise<string>;
  /** The postmaster's process id (its backends are its children), for measuring its memory. */
  serverPid(): number;
  stop(): Promise<void>;
}

const BIN_ROOT = "/usr/lib/postgresql";

/** The server binaries of the installed PostgreSQL (the newest major version), or null. */
function postgresBin(): string | null {
  try {
    const versions = readdirSync(BIN_ROOT).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    return versions.length > 0 ? join(BIN_ROOT, versions[0]!, "bin") : null;
  } catch {
    return null;
  }
}

let databases = 0;

export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBin();
  if (!bin) throw new Error("PostgreSQL is not installed (Debian package postgresql)");
  const dir = mkdtempSync(join(tmpdir(), "mailferry-postgres-"));
  const pgUid = Number((await run(["id", "-u", "postgres"])).trim());
  chownSync(dir, pgUid, pgUid);
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = (args: string[]) => run(["runuser", "-u", "postgres", "--", ...args]);
  const stop = async () => {
    await asPostgres([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // trust: only loopback and the private socket directory reach it, for the length of a test file.
    await asPostgres([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40`;
    // -w waits until it accepts connections; -t bounds that wait.
    await asPostgres([join(bin, "pg_ctl"), "-D", data, "-o", options, "-l", join(dir, "server.log"), "-w", "-t", "60", "start"]);
  } catch (err) {
    await stop();
    throw err;
  }
  const base = `postgres://postgres@127.0.0.1:${port}`;
  return {
    stop,
    serverPid: () => Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]),
    async createDatabase() {
      const name = `mailferry_${process.pid}_${++databases}`;
      await asPostgres([join(bin, "createdb"), "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name]);
      return `${base}/${name}`;
    },
  };
}

async function run(argv: string[]): Promise<string> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill(), 90_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${argv.join(" ")} failed (${code}): ${err || out}`);
  return out;
}

/** The environment of a `mailferry serve` node on `databaseUrl` forwarding to `sinkPort` on loopback, names resolved by `dnsAddress`. */
export function nodeEnv(node: { dataDir: string; databaseUrl: string; hostname: string; dnsAddress: string; sinkPort: number }): Record<string, string> {
  return {
    MAILFERRY_DATA_DIR: node.dataDir,
    MAILFERRY_DATABASE_URL: node.databaseUrl,
    MAILFERRY_HOSTNAME: node.hostname,
    MAILFERRY_SMTP_PORT: "0",
    MAILFERRY_HTTP_PORT: "0",
    MAILFERRY_DNS_SERVERS: node.dnsAddress,
    MAILFERRY_DNS_TIMEOUT: "2s",
    MAILFERRY_OUTBOUND_PORT: String(node.sinkPort),
    MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
  };
}
