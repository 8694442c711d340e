// The two listeners ACME needs on the public address (smtp.host): plain HTTP
// on acme.http_port answers the CA's HTTP-01 challenges and sends everything
// else to HTTPS; HTTPS on acme.https_port serves the public pages only (MTA-STS
// policy, destination verification, health). The admin UI stays on http.port.
import { type Config, envName } from "../config/index.ts";
import type { Logger } from "../log.ts";
import type { AcmeManager } from "./acme.ts";
import { type FetchHandler, type HttpListener, type HttpListenerOptions, listenHttp } from "./http-listener.ts";

export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

export interface PublicListeners {
  httpPort: number;
  httpsPort: number;
  /** Base URL of the public HTTPS pages, e.g. for links in verification mail. */
  url: string;
  stop(): Promise<void>;
}

/** The plain-HTTP answer: the key authorization of a pending challenge, else a redirect to the same URL on HTTPS. */
export async function answerPlainHttp(request: Request, keyAuthorization: (token: string) => Promise<string | undefined>, httpsPort: number): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname.startsWith(CHALLENGE_PREFIX)) {
    const answer = await keyAuthorization(url.pathname.slice(CHALLENGE_PREFIX.length));
    return answer ? new Response(answer, { headers: { "content-type": "text/plain" } }) : new Response("no such challenge\n", { status: 404 });
  }
  return Response.redirect(new URL(url.pathname + url.search, publicHttpsUrl(url.hostname, httpsPort)).href, 301);
}

export function publicHttpsUrl(hostname: string, port: number): string {
  return `https://${hostname}${port === 443 ? "" : `:${port}`}/`;
}

export function startPublicListeners({ config, acme, fetch, logger }: { config: Config; acme: AcmeManager; fetch: FetchHandler; logger: Logger }): PublicListeners {
  const host = config.smtp.host;
  // A port taken or not allowed (80 and 443 need CAP_NET_BIND_SERVICE) names the setting to change.
  const listen = (key: "http_port" | "https_port", options: Omit<HttpListenerOptions, "hostname" | "port" | "logger">): HttpListener => {
    const port = key === "http_port" ? config.acme.httpPort : config.acme.httpsPort;
    try {
      return listenHttp({ hostname: host, port, logger, ...options });
    } catch (err) {
      throw new Error(`cannot listen on ${host}:${port} (${envName({ section: "acme", key })}): ${(err as Error).message}`);
    }
  };
  const https = listen("https_port", { fetch, certificates: acme });
  let http: HttpListener;
  try {
    http = listen("http_port", { fetch: (request) => answerPlainHttp(request, acme.challengeResponse, https.port) });
  } catch (err) {
    void https.stop();
    throw err;
  }
  return {
    httpPort: http.port,
    httpsPort: https.port,
    url: publicHttpsUrl(config.hostname, https.port),
    stop: async () => {
      await http.stop();
      await https.stop();
    },
  };
}
