// A real rspamd (Debian's package) on loopback for scanning tests, with the
// GTUBE-like test patterns enabled, its own ports and a temporary state dir.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export interface Rspamd {
  url: string;
  stop(): Promise<void>;
}

export const rspamdInstalled = () => Bun.which("rspamd") !== null;

export async function startRspamd(): Promise<Rspamd> {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-rspamd-"));
  for (const sub of ["local.d", "override.d", "run", "db", "log"]) mkdirSync(join(dir, sub));
  const [normal, controller, proxy] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(join(dir, "local.d/options.inc"), "enable_test_patterns = true;\n");
  writeFileSync(join(dir, "override.d/worker-normal.inc"), `bind_socket = "127.0.0.1:${normal}";\n`);
  writeFileSync(join(dir, "override.d/worker-controller.inc"), `bind_socket = "127.0.0.1:${controller}";\n`);
  writeFileSync(join(dir, "override.d/worker-proxy.inc"), `bind_socket = "127.0.0.1:${proxy}";\n`);
  writeFileSync(join(dir, "override.d/logging.inc"), `type = "file"; filename = "${join(dir, "log/rspamd.log")}"; level = "warning";\n`);
  const vars = [`LOCAL_CONFDIR=${dir}`, `RUNDIR=${join(dir, "run")}`, `DBDIR=${join(dir, "db")}`, `LOGDIR=${join(dir, "log")}`].map((v) => `--var=${v}`);
  // -i: tests run as root in CI; rspamd otherwise refuses to keep root privileges.
  const proc = Bun.spawn(["rspamd", "-f", "-i", "-c", "/etc/rspamd/rspamd.conf", ...vars], { stdout: "ignore", stderr: "pipe" });
  const url = `http://127.0.0.1:${normal}`;
  // Its first start compiles the hyperscan database: about 20 s on a busy 2-core machine.
  const until = Date.now() + 60_000;
  for (;;) {
    const pong = await fetch(`${url}/ping`).then((r) => r.text(), () => "");
    if (pong.trim() === "pong") break;
    if (Date.now() > until || proc.exitCode !== null) {
      proc.kill();
      throw new Error(`rspamd did not start: ${await new Response(proc.stderr).text()}`);
    }
    await Bun.sleep(200);
  }
  return {
    url,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
