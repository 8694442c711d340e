// One outbound SMTP connection (nodemailer's SMTPConnection) as promises,
// with its failures classified by what they mean for the sender: a reply
// from the destination, a TLS failure, or a connection problem.
import type { Readable } from "node:stream";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { type Reply, reply } from "../mail/reply.ts";

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
  /** When it was opened (epoch ms) and how many transactions it carried: what limits its reuse. */
  openedAt: number;
  readonly transactions: number;
  /** Still open, and its last transaction ended in a known SMTP state (delivered, or refused by a reply). */
  readonly reusable: boolean;
  /** One transaction; after a refused one it sends RSET first, so a new transaction never meets the old one's state. */
  send(from: string, to: string[], message: () => Readable): Promise<Map<string, Reply>>;
  /** RSET, also to prove an idle connection still works: false (and the connection closed) when it fails. */
  reset(): Promise<boolean>;
  /** While idle in the connection cache, its socket must not keep the process alive. */
  setIdle(idle: boolean): void;
  /** QUIT. */
  close(): void;
}

/** What a transaction left behind on its connection. */
type SessionState = "clean" | "refused" | "broken";

/** The longest RSET may take before the connection counts as dead (Postfix's smtp_rset_timeout). */
const RSET_TIMEOUT_MS = 20_000;

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
      resolve(session(conn, opts));
    });
  });
}

/** An open, greeted (and authenticated) connection as a Connection that knows its SMTP state. */
function session(conn: SMTPConnection, opts: ConnectOptions): Connection {
  const internals = conn as unknown as { secure?: boolean; destroyed?: boolean; _socket?: { getProtocol?: () => string | null; ref(): void; unref(): void } };
  let state: SessionState = "clean";
  let transactions = 0;
  const alive = () => internals.destroyed !== true;
  const breakOff = () => {
    state = "broken";
    conn.close();
  };
  const reset = () =>
    new Promise<boolean>((resolve) => {
      // A socket that dies during RSET ends the connection without calling back.
      const done = (ok: boolean) => {
        clearTimeout(timer);
        conn.off("end", onEnd);
        if (ok) state = "clean";
        else breakOff();
        resolve(ok);
      };
      const onEnd = () => done(false);
      const timer = setTimeout(() => done(false), Math.min(RSET_TIMEOUT_MS, opts.commandTimeout));
      conn.once("end", onEnd);
      conn.reset((err) => done(!err));
    });
  return {
    hostName: opts.hostName,
    address: opts.address,
    tls: internals.secure ? (internals._socket?.getProtocol?.() ?? "TLS") : null,
    openedAt: Date.now(),
    get transactions() {
      return transactions;
    },
    get reusable() {
      return state !== "broken" && alive();
    },
    async send(from, to, message) {
      if (state === "refused" && !(await reset())) {
        const failed = reply(421, "4.4.2", `connection to ${opts.hostName} failed: RSET was not accepted`);
        return new Map(to.map((rcpt) => [rcpt, failed]));
      }
      transactions++;
      const { replies, outcome } = await send(conn, opts.hostName, from, to, message);
      if (outcome === "broken" || !alive()) breakOff();
      else state = outcome;
      return replies;
    },
    reset,
    setIdle(idle) {
      if (idle) internals._socket?.unref();
      else internals._socket?.ref();
    },
    close: () => conn.quit(),
  };
}

/**
 * Sends one transaction: the destination's reply for each recipient (its own code and text),
 * and the state it left: a refusal the server answered (other than 421, which ends the
 * session) leaves a known state that RSET clears; a failure without an answer leaves none.
 */
function send(conn: SMTPConnection, hostName: string, from: string, to: string[], message: () => Readable): Promise<{ replies: Map<string, Reply>; outcome: SessionState }> {
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
      const answered = typeof err?.responseCode === "number" && err.responseCode !== 421;
      resolve({ replies, outcome: !err ? "clean" : answered ? "refused" : "broken" });
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
