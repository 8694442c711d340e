// A relay on its own (no appliance around it), resolving through the test
// DNS server, for tests of outbound connections.
import { Readable } from "node:stream";
import { createResolver } from "../../src/dns/resolver.ts";
import type { ReuseLimits } from "../../src/delivery/connection-cache.ts";
import { createMtaSts } from "../../src/delivery/mta-sts.ts";
import { createRelay, type Envelope, type Relay } from "../../src/delivery/relay.ts";

export function startTestRelay(dns: { host: string; port: number }, reuse?: ReuseLimits): Relay {
  const resolver = createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000 });
  const config = {
    hostname: "mx.mailferry.test",
    outbound: { port: 25, connectTimeout: 2000, messageTimeout: 300_000, caFile: null, mtaStsPort: 443, allowPrivate: true },
    smarthost: null,
  };
  return createRelay({ config, resolver, mtaSts: createMtaSts({ resolver, port: 443, allowPrivate: true }), ...(reuse ? { reuse } : {}) });
}

/** One envelope to `address` on `port`, whose message is marked with `id`. */
export function envelopeTo(address: string, port: number, id: string, body = "Hello.\r\n"): Envelope {
  const raw = `From: alice@sender.test\r\nTo: ${address}\r\nSubject: ${id}\r\nMessage-ID: <${id}@sender.test>\r\n\r\n${body}`;
  return { from: "alice@sender.test", to: [{ address, domain: address.slice(address.indexOf("@") + 1), port }], message: () => Readable.from([Buffer.from(raw)]) };
}
