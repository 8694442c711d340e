// An HTTP(S) listener whose certificate can change while running. Bun's
// server.reload() keeps the old TLS context, so a new certificate gets a new
// listener on the same port (SO_REUSEPORT): it takes new connections at once,
// and the old one stops accepting and finishes the requests it has.
import type { Logger } from "../log.ts";
import type { CertificateSource } from "./credentials.ts";

export type FetchHandler = (request: Request, server: Bun.Server<undefined>) => Response | Promise<Response>;

export interface HttpListener {
  readonly port: number;
  stop(): Promise<void>;
}

export interface HttpListenerOptions {
  hostname: string;
  port: number;
  fetch: FetchHandler;
  /** HTTPS with this certificate (and its replacements); plain HTTP without. */
  certificates?: CertificateSource;
  logger: Logger;
}

export function listenHttp({ hostname, port, fetch, certificates, logger }: HttpListenerOptions): HttpListener {
  const serve = (onPort: number) =>
    Bun.serve({
      hostname,
      port: onPort,
      reusePort: certificates !== undefined,
      tls: certificates ? { cert: certificates.current().cert, key: certificates.current().key } : undefined,
      fetch,
    });
  let server = serve(port);
  const bound = server.port!;
  let stopped = false;
  certificates?.onChange(() => {
    if (stopped) return;
    const previous = server;
    try {
      server = serve(bound);
    } catch (err) {
      // The listener with the previous certificate stays.
      logger.error("tls.reload_failed", { port: bound, error: err });
      return;
    }
    void previous.stop();
    logger.info("tls.reloaded", { port: bound });
  });
  return {
    port: bound,
    stop: async () => {
      stopped = true;
      await server.stop();
    },
  };
}
