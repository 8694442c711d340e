// What the alert tests with mail share: a destination MX (mx.dest.test on
// 127.0.0.2), the admin's MX (mx.admin.test on 127.0.0.3) for alert mails to
// root@admin.test, a local HTTP server for the webhook (/hook) and ntfy
// (/ntfy/mailferry) channels, and mailferry checking its alerts every second.
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { type HttpCollector, startHttpCollector } from "../support/http-collector.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, type SinkOptions, startSinks } from "../support/sink.ts";

export interface AlertSetup {
  mf: TestMailferry;
  destination: Sink;
  admin: Sink;
  http: HttpCollector;
  close(): Promise<void>;
}

export async function startAlertSetup(options: { aliases: string; destination?: Omit<SinkOptions, "host">; env: Record<string, string> }): Promise<AlertSetup> {
  const [destination, admin] = (await startSinks([{ host: "127.0.0.2", ...options.destination }, { host: "127.0.0.3" }])) as [Sink, Sink];
  const http = startHttpCollector();
  const dns: DnsServer = await startDnsServer({
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: ["127.0.0.2"] },
    "admin.test": { MX: [{ priority: 10, exchange: "mx.admin.test" }] },
    "mx.admin.test": { A: ["127.0.0.3"] },
  });
  const mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": options.aliases },
    env: {
      MAILFERRY_OUTBOUND_PORT: String(destination.port),
      MAILFERRY_ALERTS_EMAIL: "root@admin.test",
      MAILFERRY_ALERTS_WEBHOOK_URL: `${http.url}/hook`,
      MAILFERRY_ALERTS_NTFY_URL: `${http.url}/ntfy/mailferry`,
      MAILFERRY_ALERTS_CHECK_INTERVAL: "1s",
      MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true",
      ...options.env,
    },
  });
  return {
    mf,
    destination,
    admin,
    http,
    async close() {
      await mf.stop();
      http.stop();
      await dns.close();
      await Promise.all([destination.close(), admin.close()]);
    },
  };
}
