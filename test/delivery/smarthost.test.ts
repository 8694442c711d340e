// All outbound mail through a configured relay, with STARTTLS (verified) and AUTH.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { createTestCa } from "../support/pki.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

let dns: DnsServer;
let relay: Sink;
let dir: string;
const instances: TestMailferry[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mailferry-smarthost-"));
  const ca = createTestCa();
  writeFileSync(join(dir, "ca.pem"), ca.cert);
  relay = await startSink({ host: "127.0.0.12", credentials: ca.issue("smtp.relay.test"), auth: { user: "forwarder", pass: "correct horse" } });
  // The destination's MX does not matter: everything goes to the smarthost.
  dns = await startDnsServer({ "smtp.relay.test": { A: ["127.0.0.12"] } });
});
afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop()));
  await dns.close();
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
});

async function instance(password: string) {
  const mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=hello:someone@gmail.example" },
    env: {
      MAILFERRY_SMARTHOST_HOST: "smtp.relay.test",
      MAILFERRY_SMARTHOST_PORT: String(relay.port),
      MAILFERRY_SMARTHOST_USER: "forwarder",
      MAILFERRY_SMARTHOST_PASSWORD: password,
      MAILFERRY_OUTBOUND_CA_FILE: join(dir, "ca.pem"),
    },
  });
  instances.push(mf);
  return mf;
}

test("mail is relayed through the smarthost over verified STARTTLS with AUTH", async () => {
  const mf = await instance("correct horse");
  const info = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "hello@example.test", subject: "via relay" });
  expect(info.response).toStartWith("250");
  const [copy] = await relay.waitForMessages(1);
  expect(copy!.rcptTo).toEqual(["someone@gmail.example"]);
  expect(copy!.secure).toBe(true);
  expect(copy!.user).toBe("forwarder");
  expect(copy!.mailFrom).toStartWith("SRS0=");
});

test("the smarthost refusing our credentials is answered temporarily (the sender retries)", async () => {
  const mf = await instance("wrong");
  const err = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "hello@example.test", subject: "bad auth" }).catch((e) => e);
  expect(err.responseCode).toBe(421);
  expect(relay.messages.filter((m) => m.raw.toString().includes("bad auth"))).toHaveLength(0);
});
