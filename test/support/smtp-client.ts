// Real SMTP clients for tests: nodemailer for whole messages, and a line-level
// client for exact replies to individual (also malformed) commands.
import net from "node:net";
import tls from "node:tls";
import nodemailer from "nodemailer";

export interface SmtpReplyLines {
  code: number;
  /** Text of every line without the code, joined by newlines. */
  text: string;
  lines: string[];
}

/** A line-level SMTP session: send one command, get its complete (multi-line) reply. */
export class SmtpTalk {
  private buffer = "";
  private pending: { resolve: (r: SmtpReplyLines) => void; reject: (e: Error) => void }[] = [];
  private replies: SmtpReplyLines[] = [];
  closed = false;

  private constructor(private socket: net.Socket | tls.TLSSocket) {
    this.attach(socket);
  }

  /** `localAddress` (another 127.0.0.x) makes the client look like a different host. */
  static async connect(port: number, host = "127.0.0.1", localAddress?: string): Promise<{ talk: SmtpTalk; greeting: SmtpReplyLines }> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    const talk = new SmtpTalk(socket);
    return { talk, greeting: await talk.next() };
  }

  private attach(socket: net.Socket | tls.TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer += chunk.toString("utf8");
      let match: RegExpExecArray | null;
      // A reply ends at a line "NNN text" (space, not dash, after the code).
      while ((match = /^(?:\d{3}-.*\r?\n)*(\d{3})(?: .*)?\r?\n/.exec(this.buffer))) {
        const block = match[0];
        this.buffer = this.buffer.slice(block.length);
        const lines = block.split(/\r?\n/).filter(Boolean);
        const reply = { code: Number(match[1]), lines, text: lines.map((l) => l.slice(4)).join("\n") };
        const waiter = this.pending.shift();
        if (waiter) waiter.resolve(reply);
        else this.replies.push(reply);
      }
    });
    socket.on("close", () => {
      this.closed = true;
      this.pending.splice(0).forEach((w) => w.reject(new Error("connection closed")));
    });
    socket.on("error", () => {});
  }

  next(timeoutMs = 5000): Promise<SmtpReplyLines> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no SMTP reply in time")), timeoutMs);
      this.pending.push({
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  send(line: string): Promise<SmtpReplyLines> {
    this.write(line + "\r\n");
    return this.next();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Upgrades after a 220 reply to STARTTLS; rejects when the handshake fails. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
    this.socket.removeAllListeners("data");
    const secure = tls.connect({ socket: this.socket as net.Socket, rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    this.socket = secure;
    this.attach(secure);
    return secure;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface SendOptions {
  from: string;
  to: string | string[];
  /** A complete RFC 5322 message; default: a small text message. */
  raw?: string | Buffer;
  subject?: string;
  text?: string;
  requireTLS?: boolean;
  ignoreTLS?: boolean;
  /** Send from this loopback address (another 127.0.0.x looks like another host). */
  localAddress?: string;
}

/** Sends one message with nodemailer; rejects with nodemailer's error (responseCode, response) on refusal. */
export async function sendMail(port: number, options: SendOptions) {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    requireTLS: options.requireTLS ?? false,
    ignoreTLS: options.ignoreTLS ?? false,
    tls: { rejectUnauthorized: false },
    name: "client.test",
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 10000,
  });
  try {
    const envelope = { from: options.from, to: options.to };
    return await transport.sendMail(
      options.raw !== undefined
        ? { envelope, raw: options.raw }
        : { envelope, from: options.from, to: options.to, subject: options.subject ?? "test", text: options.text ?? "hello" },
    );
  } finally {
    transport.close();
  }
}
