// Starts mailferry through the real serve path (configuration loading,
// appliance start-up) on free ports with a temporary data dir, pointed at
// the test DNS server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Appliance, startAppliance } from "../../src/app.ts";
import { loadConfig } from "../../src/config/index.ts";
import { createLogger } from "../../src/log.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { importAliases } from "../../src/store/aliases.ts";
import type { DB } from "../../src/store/db.ts";
import { addDomain } from "../../src/store/domains.ts";
import type { DnsServer } from "./dns-server.ts";

export const TEST_HOSTNAME = "mx.mailferry.test";

export interface TestMailferry {
  appliance: Appliance;
  smtpPort: number;
  httpUrl: string;
  dataDir: string;
  /** Every log line as parsed JSON. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface StartOptions {
  dns: DnsServer;
  domains?: string[];
  /** Alias rules per domain in TXT syntax, imported like `mailferry alias import --apply`. */
  aliases?: Record<string, string>;
  /** Extra MAILFERRY_* variables. */
  env?: Record<string, string>;
  /** Reuse a data dir (e.g. to test restarts); it is then not removed on stop. */
  dataDir?: string;
}

export async function startMailferry({ dns, domains = [], aliases = {}, env = {}, dataDir }: StartOptions): Promise<TestMailferry> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "mailferry-test-"));
  const input = {
    env: {
      MAILFERRY_DATA_DIR: dir,
      MAILFERRY_HOSTNAME: TEST_HOSTNAME,
      MAILFERRY_SMTP_PORT: "0",
      MAILFERRY_HTTP_PORT: "0",
      MAILFERRY_DNS_SERVERS: dns.address,
      MAILFERRY_DNS_TIMEOUT: "1s",
      MAILFERRY_SMTP_SHUTDOWN_GRACE: "2s",
      // Greylisting would answer every first message 450; its own tests turn it on.
      MAILFERRY_GREYLIST_DELAY: "0",
      // Likewise every test destination would wait for verification; its own tests turn it on.
      MAILFERRY_VERIFY_DESTINATIONS: "false",
      // Test destinations are sinks on 127.0.0.x, which outbound delivery refuses by default.
      MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
      ...env,
    },
  };
  const config = loadConfig(input);
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", format: "json", write: (line) => logs.push(JSON.parse(line)) });
  const appliance = await startAppliance(config, logger, input);
  for (const domain of domains) await addDomain(appliance.store.db, domain);
  for (const [domain, text] of Object.entries(aliases)) {
    const report = await importAliases(appliance.store.db, domain, text, { apply: true, allowPrivateWebhooks: config.webhooks.allowPrivate });
    if (!report.applied) throw new Error(`test aliases for ${domain}: ${JSON.stringify(report.errors)}`);
  }
  return {
    appliance,
    smtpPort: appliance.smtp.port,
    httpUrl: appliance.http.url,
    dataDir: dir,
    logs,
    async stop() {
      await appliance.stop();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The admin "admin", signed in from 127.0.0.1: its session cookie and CSRF token, for UI requests. */
export async function signedInAdmin(db: DB): Promise<{ cookie: string; csrf: string }> {
  const admin = await createAdmin(db, "admin", "correct horse battery staple");
  const session = await createSession(db, admin.id, "127.0.0.1", "test");
  return { cookie: `mf_session=${session.token}`, csrf: session.csrf };
}
