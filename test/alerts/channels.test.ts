// The webhook and ntfy channels try a failed post again, at most three times in
// all, and only when the failure may pass (no answer, 5xx, 408, 429): a local
// HTTP server answers each path as the test tells it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type ChannelDeps, POST_TRIES, sendNotice } from "../../src/alerts/channels.ts";
import type { Notice } from "../../src/alerts/decide.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { createLogger } from "../../src/log.ts";

/** The statuses each path answers in turn; past the list, 200. */
const script = new Map<string, number[]>();
const hits = new Map<string, number>();
let server: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      const path = new URL(req.url).pathname;
      const n = hits.get(path) ?? 0;
      hits.set(path, n + 1);
      return new Response("answer", { status: script.get(path)?.[n] ?? 200 });
    },
  });
});
afterAll(() => void server.stop(true));

const notice: Notice = { kind: "started", alert: { key: "disk_space", kind: "disk_space", title: "Disk space is low", detail: "Only 1 MB free.", startedAt: Date.now() } };

/** Sends the notice to `/<name>/hook` and `/<name>/ntfy`; the log lines it wrote. */
async function send(name: string, hook: number[], ntfy: number[]): Promise<{ event: string; channel: string }[]> {
  script.set(`/${name}/hook`, hook);
  script.set(`/${name}/ntfy`, ntfy);
  const logs: { event: string; channel: string }[] = [];
  const deps: ChannelDeps = {
    channels: { email: [], webhookUrl: `http://127.0.0.1:${server.port}/${name}/hook`, ntfyUrl: `http://127.0.0.1:${server.port}/${name}/ntfy` },
    hostname: "mx.mailferry.test",
    queueMail: async () => {},
    resolver: createResolver({ servers: [{ host: "127.0.0.1", port: 9 }], timeout: 500 }),
    allowPrivate: true,
    webhookKey: "k",
    timeoutMs: 2000,
    logger: createLogger({ level: "info", format: "json", write: (line) => logs.push(JSON.parse(line)) }),
  };
  await sendNotice(notice, deps);
  return logs.filter((l) => l.event.startsWith("alert."));
}

test("a post answered 503 and 429 is tried again and arrives; sent once", async () => {
  const logs = await send("flaky", [503, 503], [429]);
  expect([hits.get("/flaky/hook"), hits.get("/flaky/ntfy")]).toEqual([3, 2]);
  expect(logs.filter((l) => l.event === "alert.sent").map((l) => l.channel).sort()).toEqual(["ntfy", "webhook"]);
  expect(logs.filter((l) => l.event === "alert.retrying")).toHaveLength(3);
}, 15_000);

test("a post failing every time is tried three times, then given up", async () => {
  const logs = await send("down", [500, 500, 500, 500], [502, 502, 502, 502]);
  expect([hits.get("/down/hook"), hits.get("/down/ntfy")]).toEqual([POST_TRIES, POST_TRIES]);
  expect(logs.filter((l) => l.event === "alert.not_sent").map((l) => l.channel).sort()).toEqual(["ntfy", "webhook"]);
}, 15_000);

test("a refusal a retry cannot mend (404, 401) is tried once", async () => {
  const logs = await send("wrong", [404, 404], [401, 401]);
  expect([hits.get("/wrong/hook"), hits.get("/wrong/ntfy")]).toEqual([1, 1]);
  expect(logs.map((l) => l.event)).toEqual(["alert.not_sent", "alert.not_sent"]);
});
