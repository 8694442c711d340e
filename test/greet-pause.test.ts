// The pause before the SMTP banner ([smtp] greet_pause): smtp-server's init
// replaced by src/smtp/greet-pause.ts, over real SMTP on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";
import { ConfigError, loadConfig, loadConfigWithOrigins } from "../src/config/index.ts";
import { DEFAULT_GREET_PAUSE_MS, greetPauseOf, originalInit } from "../src/smtp/greet-pause.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "./support/mailferry.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { run } from "./support/smoke.ts";
import { sendMail, SmtpTalk } from "./support/smtp-client.ts";

/** smtp-server 3.21.6's init, which src/smtp/greet-pause.ts copies. */
const COPIED_INIT = `
    init() {
        // Setup event handlers for the socket
        this._setListeners(() => {
            // Check that connection limit is not exceeded
            if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
                return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
            }
            // Keep a small delay for detecting early talkers
            let readyTimer = setTimeout(() => this.connectionReady(), 100);
            // Unref timer so connection init delay doesn't prevent process exit
            readyTimer.unref();
        });
    }`;

const squash = (code: string) => code.replace(/\s+/g, " ").trim();

describe("smtp-server's init, as copied", () => {
  test("the installed smtp-server's init is still the one src/smtp/greet-pause.ts copies (re-check the copy when this fails)", () => {
    const file = fileURLToPath(import.meta.resolve("smtp-server/lib/smtp-connection.js"));
    const source = readFileSync(file, "utf8");
    const init = /\n {4}init\(\) \{\n[\s\S]*?\n {4}\}/.exec(source)?.[0];
    expect(init).toBeDefined();
    expect(squash(init!)).toBe(squash(COPIED_INIT));
    // What runs is that file (Bun's transpiled text of it): the 100 ms timer the copy makes configurable.
    expect(squash(originalInit.toString())).toContain("setTimeout(() => this.connectionReady(), 100)");
  });

  test("the replacement is installed and waits greetPause, or smtp-server's 100 ms without it", () => {
    expect(SMTPConnection.prototype.init).not.toBe(originalInit);
    expect(DEFAULT_GREET_PAUSE_MS).toBe(100);
    expect(greetPauseOf({})).toBe(100);
    expect(greetPauseOf({ greetPause: 0 })).toBe(0);
    expect(greetPauseOf({ greetPause: 300 })).toBe(300);
  });

  test("loading the MX listener installs it (in a fresh process, where this file's own import does not count)", async () => {
    const script = `
      const { SMTPConnection } = await import("smtp-server/lib/smtp-connection.js");
      const before = SMTPConnection.prototype.init;
      await import(${JSON.stringify(join(import.meta.dir, "../src/smtp/listener.ts"))});
      console.log(SMTPConnection.prototype.init === before ? "unchanged" : "replaced");`;
    const result = await run([process.execPath, "-e", script], { cwd: join(import.meta.dir, "..") });
    expect(result).toMatchObject({ exitCode: 0, stdout: "replaced\n" });
  });
});

describe("[smtp] greet_pause setting", () => {
  const load = (value?: string) => loadConfig({ env: value === undefined ? {} : { MAILFERRY_SMTP_GREET_PAUSE: value }, cwd: "/nonexistent" });
  function rejection(value: string): string {
    try {
      load(value);
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    throw new Error(`${value} was accepted`);
  }

  test("defaults to smtp-server's 100ms; 0 and durations up to 30s are accepted", () => {
    expect(load().smtp.greetPause).toBe(100);
    expect(load("0").smtp.greetPause).toBe(0);
    expect(load("250ms").smtp.greetPause).toBe(250);
    expect(load("30s").smtp.greetPause).toBe(30_000);
    const shown = loadConfigWithOrigins({ env: {}, cwd: "/nonexistent" }).effective.find((e) => e.key === "smtp.greet_pause");
    expect(shown).toMatchObject({ shown: "100ms", origin: "default" });
  });

  test("a negative or absurd pause is refused naming the setting", () => {
    expect(rejection("-1s")).toBe('invalid configuration: MAILFERRY_SMTP_GREET_PAUSE="-1s": must be a duration such as 30 (seconds), 500ms, 5s, 3m or 1h');
    expect(rejection("31s")).toBe('invalid configuration: MAILFERRY_SMTP_GREET_PAUSE="31s": must be a duration from 0 to 30s');
    expect(rejection("1h")).toContain("must be a duration from 0 to 30s");
  });
});

describe("greeting over SMTP", () => {
  const PAUSE_MS = 300;
  let dns: DnsServer;
  let sink: Sink;
  let atOnce: TestMailferry;
  let paused: TestMailferry;

  beforeAll(async () => {
    sink = await startSink({ host: "127.0.0.2" });
    dns = await startDnsServer({
      "elsewhere.test": { MX: [{ priority: 10, exchange: "mx.elsewhere.test" }] },
      "mx.elsewhere.test": { A: ["127.0.0.2"] },
    });
    const options = { dns, domains: ["example.test"], aliases: { "example.test": "forward-email=someone@elsewhere.test" } };
    atOnce = await startMailferry({ ...options, env: { MAILFERRY_SMTP_GREET_PAUSE: "0", MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
    paused = await startMailferry({ ...options, env: { MAILFERRY_SMTP_GREET_PAUSE: `${PAUSE_MS}ms`, MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
  });
  afterAll(async () => {
    await atOnce?.stop();
    await paused?.stop();
    await dns?.close();
    await sink?.close();
  });

  test("greet_pause 0: the banner comes and a whole message is forwarded", async () => {
    const { talk, greeting } = await SmtpTalk.connect(atOnce.smtpPort);
    expect(greeting.code).toBe(220);
    expect(greeting.text).toStartWith(`${TEST_HOSTNAME} ESMTP`);
    talk.close();

    await sendMail(atOnce.smtpPort, { from: "sender@origin.test", to: "someone@example.test", subject: "no pause" });
    const [message] = await sink.waitForMessages(1);
    expect(message!.rcptTo).toEqual(["someone@elsewhere.test"]);
    expect(message!.raw.toString()).toContain("Subject: no pause");
  });

  test(`greet_pause ${PAUSE_MS}ms: a patient client gets the banner no sooner than the pause`, async () => {
    const started = performance.now();
    const { talk, greeting } = await SmtpTalk.connect(paused.smtpPort);
    const waited = performance.now() - started;
    expect(greeting.code).toBe(220);
    // Longer than smtp-server's own 100 ms, so the configured pause is the one that ran.
    expect(waited).toBeGreaterThanOrEqual(PAUSE_MS);
    expect((await talk.send("EHLO patient.test")).code).toBe(250);
    talk.close();
  });

  test(`greet_pause ${PAUSE_MS}ms: a client that sends EHLO before the banner is refused with 421 and disconnected`, async () => {
    const socket = net.connect({ port: paused.smtpPort, host: "127.0.0.1" });
    socket.on("connect", () => socket.write("EHLO early.test\r\n"));
    const received = await new Promise<string>((resolve, reject) => {
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(received).toBe(`421 ${TEST_HOSTNAME} You talk too soon\r\n`);
  });
});
