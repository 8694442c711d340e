// One outbound SMTP connection (nodemailer's SMTPConnection) as promises,
// with its failures classified by what they mean for the sender: a reply
// from the destination, a TLS failure, or a connection problem.
import type { Readable } from "node:stream";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { type Reply, reply } from "../smtp/reply.ts";

export type TlsMode =
  /** STARTTLS when offered, certificate not verified (RFC 7435 opportunistic). */
  | "opportunistic"
  /** STARTTLS required and the certificate verified for the host name (MTA-STS enforce, smarthost). */
  | "required"
  /** TLS from the first byte (smarthost on port 465). */
  | "implicit"
  /** Plain text, after a failed opportunistic attempt or for a smarthost without TLS. */
  | "none";

export interface ConnectOptions {
  address: string;
  port: number;
  /** Host name for SNI, certificate checks and logs. */
  hostName: string;
  /** Our name in EHLO. */
  ehloName: string;
  tls: TlsMode;
  ca?: Buffer;
  connectTimeout: number;
  commandTimeout: number;
  auth?: { user: string; pass: string };
}

export class ConnectError extends Error {
  constructor(
    message: string,
    /** The TLS handshake (or a required STARTTLS) failed: a plain-text retry may help. */
    readonly tlsFailure: boolean,
    /** The destination's own reply (e.g. a 421 or 554 greeting), when there was one. */
    readonly reply: Reply | null,
    /** AUTH was refused: a problem of our configuration, never the sender's. */
    readonly authFailure = false,
  ) {
    super(message);
  }
}

export interface Connection {
  hostName: string;
  address: string;
  /** Negotiated TLS protocol, or null for plain text. */
  tls: string | null;
  send(from: string, to: string[], message: () => Readable): Promise<Map<string, Reply>>;
  close(): void;
}

type NodemailerError = Error & { code?: string; response?: string; responseCode?: number; recipient?: string; rejectedErrors?: NodemailerError[] };

export function connect(opts: ConnectOptions): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const conn = new SMTPConnection({
      host: opts.address,
      port: opts.port,
      servername: opts.hostName,
      name: opts.ehloName,
      secure: opts.tls === "implicit",
      requireTLS: opts.tls === "required",
      ignoreTLS: opts.tls === "none",
      tls: { rejectUnauthorized: opts.tls === "required" || opts.tls === "implicit", minVersion: "TLSv1.2", ...(opts.ca ? { ca: opts.ca } : {}) },
      connectionTimeout: opts.connectTimeout,
      greetingTimeout: opts.commandTimeout,
      socketTimeout: opts.commandTimeout,
      socketCloseTimeout: 0,
      logger: false,
    });
    let settled = false;
    const fail = (err: NodemailerError, authFailure = false) => {
      if (settled) return;
      settled = true;
      const upgrading = (conn as unknown as { upgrading?: boolean }).upgrading === true;
      const tlsFailure = upgrading || err.code === "ETLS";
      reject(new ConnectError(err.message, tlsFailure, err.response ? parseReply(err.response) : null, authFailure));
      conn.close();
    };
    conn.on("error", fail);
    conn.once("end", () => fail(new Error("connection closed by the server")));
    conn.connect(async () => {
      if (opts.auth) {
        try {
          await new Promise<void>((ok, no) => conn.login(opts.auth!, (err) => (err ? no(err) : ok())));
        } catch (err) {
          return fail(err as NodemailerError, true);
        }
      }
      settled = true;
      const secure = (conn as unknown as { secure?: boolean; _socket?: { getProtocol?: () => string | null } }).secure;
      const socket = (conn as unknown as { _socket?: { getProtocol?: () => string | null } })._socket;
      resolve({
        hostName: opts.hostName,
        address: opts.address,
        tls: secure ? (socket?.getProtocol?.() ?? "TLS") : null,
        send: (from, to, message) => send(conn, opts.hostName, from, to, message),
        close: () => conn.quit(),
      });
    });
  });
}

/** Sends one transaction; the destination's reply for each recipient (its own code and text). */
function send(conn: SMTPConnection, hostName: string, from: string, to: string[], message: () => Readable): Promise<Map<string, Reply>> {
  return new Promise((resolve) => {
    const replies = new Map<string, Reply>();
    const onError = () => {}; // reported through the send callback
    conn.on("error", onError);
    conn.send({ from: from || false, to }, message(), (err: NodemailerError | null, info?: { accepted: string[]; rejectedErrors?: NodemailerError[]; response: string }) => {
      conn.off("error", onError);
      const rejected = err?.rejectedErrors ?? info?.rejectedErrors ?? [];
      for (const r of rejected) if (r.recipient) replies.set(r.recipient, parseReply(r.response ?? "", 450));
      if (info) {
        for (const rcpt of info.accepted) replies.set(rcpt, parseReply(info.response, 250));
      } else if (err) {
        // MAIL FROM or DATA refused, or the connection failed mid-way: every recipient not yet answered shares it.
        const shared = err.response ? parseReply(err.response) : reply(421, "4.4.2", `connection to ${hostName} failed: ${err.message}`);
        for (const rcpt of to) if (!replies.has(rcpt)) replies.set(rcpt, shared);
      }
      resolve(replies);
    });
  });
}

/**
 * A destination's reply as data. A reply that asks to slow down or defer is
 * temporary whatever its code (some providers use 5xx for rate limits).
 */
export function parseReply(response: string, fallbackCode = 451): Reply {
  const lines = response.split(/\r?\n/).filter(Boolean);
  const first = /^(\d{3})[ -]?(.*)$/.exec(lines[0] ?? "");
  let code = first ? Number(first[1]) : fallbackCode;
  const texts = lines.map((l) => l.replace(/^\d{3}[ -]?/, "").replace(/^\d\.\d{1,3}\.\d{1,3}\s+/, ""));
  const enhancedMatch = /^\d{3}[ -]?(\d\.\d{1,3}\.\d{1,3})\s/.exec(lines[0] ?? "");
  let enhanced = enhancedMatch?.[1] ?? `${String(code)[0]}.0.0`;
  const text = texts.join(" ").trim() || "(no text)";
  if (code >= 500 && /defer|slow down/i.test(text)) {
    code = 421;
    enhanced = `4${enhanced.slice(1)}`;
  }
  return reply(code, enhanced, text);
}
