// A real ACME CA for tests: Let's Encrypt's pebble (Debian package) on
// loopback, resolving names through the test DNS server and validating HTTP-01
// on the port mailferry's acme.http_port listens on. Its own HTTPS certificate
// comes from a private test CA (Debian ships none), passed to mailferry as
// acme.ca_file. Pebble keeps nothing between runs.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DnsServer } from "./dns-server.ts";
import { createTestCa } from "./pki.ts";
import { freePort } from "./ports.ts";

export const pebbleInstalled = () => Bun.which("pebble") !== null;

export interface Pebble {
  directoryUrl: string;
  /** The CA of pebble's own HTTPS certificate (for acme.ca_file). */
  caFile: string;
  /** The root of the certificates pebble issues (made anew at each start). */
  root(): Promise<string>;
  /** Everything pebble printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export async function startPebble({ dns, httpPort }: { dns: DnsServer; httpPort: number }): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-pebble-"));
  const ca = createTestCa();
  const own = ca.issue("127.0.0.1", "localhost");
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, ca.cert);
  writeFileSync(join(dir, "cert.pem"), own.cert);
  writeFileSync(join(dir, "key.pem"), own.key);
  const [acmePort, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: join(dir, "cert.pem"),
      privateKey: join(dir, "key.pem"),
      httpPort,
      tlsPort,
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
    },
  };
  writeFileSync(join(dir, "pebble.json"), JSON.stringify(config));
  const proc = Bun.spawn(["pebble", "-config", join(dir, "pebble.json"), "-dnsserver", dns.address], {
    // No random validation delays, no rejected nonces, and every order validated afresh.
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
    stdout: "pipe",
    stderr: "pipe",
  });
  let printed = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) printed += Buffer.from(chunk).toString("utf8");
  };
  void collect(proc.stdout);
  void collect(proc.stderr);

  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const until = Date.now() + 15_000;
  for (;;) {
    const ok = await fetch(directoryUrl, { tls: { ca: ca.cert } }).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > until || proc.exitCode !== null) {
      await stop();
      throw new Error(`pebble did not start:\n${printed}`);
    }
    await Bun.sleep(100);
  }
  return {
    directoryUrl,
    caFile,
    root: () => fetch(`https://127.0.0.1:${managementPort}/roots/0`, { tls: { ca: ca.cert } }).then((r) => r.text()),
    output: () => printed,
    stop,
  };
}

/** The settings of a mailferry that orders from `pebble`, its ACME HTTP listener on `httpPort`, checking every second. */
export function pebbleAcmeEnv(pebble: Pebble, httpPort: number): Record<string, string> {
  return {
    MAILFERRY_ACME_ENABLED: "true",
    MAILFERRY_ACME_DIRECTORY_URL: pebble.directoryUrl,
    MAILFERRY_ACME_CA_FILE: pebble.caFile,
    MAILFERRY_ACME_HTTP_PORT: String(httpPort),
    MAILFERRY_ACME_HTTPS_PORT: "0",
    MAILFERRY_ACME_CHECK_INTERVAL: "1s",
  };
}
