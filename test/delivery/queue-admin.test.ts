// The outbound queue seen and handled by an admin: `mailferry queue
// list|retry|delete` on the running server's data dir, the API (/api/v1/queue,
// scopes enforced) and the UI page with its htmx actions, each audited. The
// destination answers 4xx, so the message stays queued until it is deleted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { listAudit } from "../../src/store/audit.ts";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { signedInAdmin, startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { CLI, run } from "../support/smoke.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;
let tokens: { read: string; write: string };
let session: { cookie: string; csrf: string };
let rcpts = 0;

beforeAll(async () => {
  sink = await startSink({
    host: "127.0.0.2",
    tls: "none",
    onRcpt: () => {
      rcpts++;
      return { code: 451, text: "4.3.2 Try again later" };
    },
  });
  dns = await startDnsServer({ "later.test": { MX: [{ priority: 10, exchange: "mx.later.test" }] }, "mx.later.test": { A: [sink.host] } });
  mf = await startMailferry({ dns, domains: ["example.test"], env: { MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
  const db = mf.appliance.store.db;
  tokens = { read: (await createToken(db, "reader", "read")).token, write: (await createToken(db, "writer", "write")).token };
  session = await signedInAdmin(db);
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

/** A message from an alias to a destination that defers it: it stays in the queue. */
async function queueOne(subject: string): Promise<number> {
  const raw = Buffer.from(`From: me@example.test\r\nTo: friend@later.test\r\nSubject: ${subject}\r\n\r\nHi.\r\n`);
  const before = rcpts;
  const id = await mf.appliance.outbox.enqueue({ from: "me@example.test", to: ["friend@later.test"], raw, submitter: "me@example.test" });
  await waitFor(() => rcpts > before, 10_000);
  await mf.appliance.outbox.runDue();
  return id;
}

const api = async (method: string, path: string, token: string) => {
  const res = await fetch(`${mf.httpUrl}api/v1${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json().catch(() => null)) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const cli = (...args: string[]) => run([...CLI, "queue", ...args], { cwd: mf.dataDir, env: { MAILFERRY_DATA_DIR: mf.dataDir, MAILFERRY_DNS_SERVERS: dns.address } });
const audited = async (action: string, id: number) => (await listAudit(mf.appliance.store.db)).filter((a) => a.action === action && a.target === String(id)).map((a) => a.actor);

describe("mailferry queue", () => {
  test("list --json shows the message with its recipient's state and last reply; retry makes it due; delete removes it", async () => {
    const id = await queueOne("cli");
    const listed = await cli("list", "--json");
    expect(listed.exitCode).toBe(0);
    const item = (JSON.parse(listed.stdout) as { id: number }[]).find((i) => i.id === id);
    expect(item).toMatchObject({ from: "me@example.test", submitter: "me@example.test", attempts: 1, recipients: [{ address: "friend@later.test", status: "pending", last_reply: "451 4.3.2 Try again later" }] });
    expect((await cli("list")).stdout).toContain(`${id}  from me@example.test  to friend@later.test`);

    expect((await cli("retry", String(id))).exitCode).toBe(0);
    const due = (await mf.appliance.store.db.selectFrom("outbox").select("next_attempt").where("id", "=", id).executeTakeFirstOrThrow()).next_attempt;
    expect(due).toBeLessThanOrEqual(Date.now());
    expect((await cli("delete", String(id))).exitCode).toBe(0);
    expect((JSON.parse((await cli("list", "--json")).stdout) as { id: number }[]).map((i) => i.id)).not.toContain(id);
    expect(await audited("queue.retry", id)).toEqual(["cli"]);
    expect(await audited("queue.delete", id)).toEqual(["cli"]);
  });

  test("an unknown id or a bad one is a clear error", async () => {
    const gone = await cli("delete", "999999");
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain("no message 999999 in the outbound queue");
    const bad = await cli("retry", "abc");
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("usage: mailferry queue retry <id>");
  });
});

describe("API /api/v1/queue", () => {
  test("GET lists (read scope); retry and delete need write; each is audited as the token", async () => {
    const id = await queueOne("api");
    const list = await api("GET", "/queue", tokens.read);
    expect(list.status).toBe(200);
    expect(list.body.items.find((i: { id: number }) => i.id === id)).toMatchObject({ recipients: [{ address: "friend@later.test", status: "pending" }], attempts: 1 });

    expect((await api("POST", `/queue/${id}/retry`, tokens.read)).status).toBe(403);
    const tried = rcpts;
    expect((await api("POST", `/queue/${id}/retry`, tokens.write)).status).toBe(204);
    // Retry now starts an attempt at once in the server.
    await waitFor(() => rcpts > tried, 10_000);
    expect((await api("DELETE", `/queue/${id}`, tokens.read)).status).toBe(403);
    expect((await api("DELETE", `/queue/${id}`, tokens.write)).status).toBe(204);
    expect((await api("DELETE", `/queue/${id}`, tokens.write)).body.error).toMatchObject({ code: "not_found" });
    expect(await audited("queue.retry", id)).toEqual(["token:writer"]);
    expect(await audited("queue.delete", id)).toEqual(["token:writer"]);
  });
});

describe("UI /queue", () => {
  const at = (path: string) => `${mf.httpUrl}${path.replace(/^\//, "")}`;
  const htmx = (path: string) => fetch(at(path), { method: "POST", headers: { cookie: session.cookie, "x-csrf-token": session.csrf, "hx-request": "true" } });

  test("the page lists the message; htmx retry swaps in its row, delete swaps in nothing; both audited as the admin", async () => {
    const id = await queueOne("ui");
    const page = await (await fetch(at("/queue"), { headers: { cookie: session.cookie } })).text();
    expect(page).toContain(`id="queue-${id}"`);
    expect(page).toContain("friend@later.test");
    expect(page).toContain(`hx-post="/queue/${id}/retry"`);

    const retried = await htmx(`/queue/${id}/retry`);
    expect(retried.status).toBe(200);
    expect(await retried.text()).toStartWith(`<tr id="queue-${id}">`);
    const deleted = await htmx(`/queue/${id}/delete`);
    expect(await deleted.text()).toBe("");
    expect((await fetch(at("/queue"), { headers: { cookie: session.cookie } }).then((r) => r.text())).includes(`id="queue-${id}"`)).toBe(false);
    expect(await audited("queue.retry", id)).toEqual(["admin:admin"]);
    expect(await audited("queue.delete", id)).toEqual(["admin:admin"]);
  });

  test("without htmx a form post redirects back with a note; a message no longer queued is said so", async () => {
    const form = (path: string) => fetch(at(path), { method: "POST", body: new URLSearchParams({ _csrf: session.csrf }), headers: { cookie: session.cookie }, redirect: "manual" });
    const id = await queueOne("form");
    const res = await form(`/queue/${id}/delete`);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toStartWith("/queue?ok=");
    const gone = await form(`/queue/${id}/retry`);
    expect(gone.status).toBe(404);
    expect(await gone.text()).toContain(`no message ${id} in the outbound queue`);
  });
});
