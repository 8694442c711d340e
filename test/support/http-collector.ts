// A local HTTP server on 127.0.0.1 that records every request it gets
// (alert webhooks and ntfy posts) and answers 200.

export interface CollectedRequest {
  path: string;
  body: string;
  headers: Headers;
}

export interface HttpCollector {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  requests: CollectedRequest[];
  /** The JSON bodies of the requests to `path`. */
  json<T>(path: string): T[];
  stop(): void;
}

export function startHttpCollector(): HttpCollector {
  const requests: CollectedRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      requests.push({ path: new URL(req.url).pathname, body: await req.text(), headers: req.headers });
      return new Response("ok");
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    json: <T>(path: string) => requests.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as T),
    stop: () => void server.stop(true),
  };
}
