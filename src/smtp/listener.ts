// The MX listener: smtp-server speaks the protocol, the stage hooks decide,
// and this layer turns each decision into the reply on the wire, the log line
// and the mail-log event. A hook that throws answers 421: the sender keeps
// the message and retries, so nothing is accepted and then lost.
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { Config } from "../config/index.ts";
import type { Resolver } from "../dns/resolver.ts";
import { identifyClient } from "../policy/identity.ts";
import type { Logger } from "../log.ts";
import type { EventStage, NewEvent } from "../store/schema.ts";
import { headerBlockEnd, headerValue, parseHeaderBlock } from "../mail/headers.ts";
import type { StageHooks } from "./hooks.ts";
import { formatReply, INTERNAL_ERROR, isAccepted, type Reply, toServerError } from "../mail/reply.ts";
import type { InboundMessage, Session } from "./session.ts";
import type { CertificateSource } from "../tls/credentials.ts";
// Makes smtp-server honour the greetPause option below.
import "./greet-pause.ts";

export interface MxListener {
  host: string;
  port: number;
  readonly listening: boolean;
  /** SMTP connections open now. */
  readonly sessions: number;
  /** Stops accepting, lets sessions finish within the shutdown grace period, then closes the rest. */
  close(): Promise<void>;
}

export interface ListenerDeps {
  config: Config;
  /** The STARTTLS certificate; a new one (ACME renewal) applies to the next STARTTLS, sessions already encrypted keep theirs. */
  certificates: CertificateSource;
  hooks: StageHooks;
  resolver: Resolver;
  logger: Logger;
  /** Stores one mail-log event; failures are logged and never change the reply. */
  recordEvent: (event: NewEvent) => Promise<void>;
}

/** Header blocks longer than this are not parsed for the log (the message still passes whole). */
const MAX_HEADER_SCAN = 256 * 1024;

export async function startMxListener(deps: ListenerDeps): Promise<MxListener> {
  const { config, certificates, hooks, resolver, logger } = deps;
  const tls = certificates.current();
  const sessions = new WeakMap<SMTPServerSession, Session>();

  async function decide(stage: EventStage, session: Session, hook: () => Promise<Reply>): Promise<Reply> {
    try {
      return await hook();
    } catch (err) {
      logger.error("smtp.internal_error", { session: session.id, ip: session.remoteIp, stage, error: err });
      return INTERNAL_ERROR;
    }
  }

  async function answer(stage: EventStage, session: Session, verdict: Reply, recipients: string[], message?: InboundMessage, facts: Record<string, unknown> = {}) {
    logger[verdict.code >= 400 ? "warn" : "info"]("smtp.verdict", {
      session: session.id,
      ip: session.remoteIp,
      stage,
      reply: formatReply(verdict),
      from: session.mailFrom ?? undefined,
      rcpt: recipients.length ? recipients : undefined,
      size: message?.size,
    });
    const event: NewEvent = {
      at: Date.now(),
      session_id: session.id,
      remote_ip: session.remoteIp,
      stage,
      code: verdict.code,
      enhanced: verdict.enhanced,
      text: verdict.text,
      mail_from: session.mailFrom,
      recipients: recipients.length ? JSON.stringify(recipients) : null,
      domain: recipients.length ? recipients[0]!.slice(recipients[0]!.lastIndexOf("@") + 1).toLowerCase() : null,
      message_id: message ? (headerValue(message.headers, "message-id") ?? null) : null,
      subject: message ? (headerValue(message.headers, "subject") ?? null) : null,
      headers: message?.headerBlock || null,
      detail: JSON.stringify({ helo: session.helo, client_host: session.clientHost, verified_host: session.verifiedHost, sender_key: session.senderKey, tls: session.tls, size: message?.size, ...facts }),
    };
    await deps.recordEvent(event).catch((err) => logger.error("events.write_failed", { session: session.id, error: err }));
  }

  const server = new SMTPServer({
    name: config.hostname,
    banner: "mailferry",
    key: tls.key,
    cert: tls.cert,
    minVersion: "TLSv1.2",
    size: config.smtp.maxSize,
    authOptional: true,
    disabledCommands: ["AUTH"],
    // Reverse DNS goes through mailferry's own resolver (configured servers, cache).
    disableReverseLookup: true,
    socketTimeout: config.smtp.socketTimeout,
    closeTimeout: config.smtp.shutdownGrace,
    maxClients: config.smtp.maxClients,
    greetPause: config.smtp.greetPause,
    logger: false,

    onConnect(raw, callback) {
      const remoteIp = raw.remoteAddress.replace(/^::ffff:/, "");
      const session: Session = {
        id: raw.id,
        remoteIp,
        remotePort: raw.remotePort,
        clientHost: null,
        verifiedHost: null,
        senderKey: remoteIp,
        allowlisted: false,
        helo: null,
        tls: null,
        mailFrom: null,
        recipients: [],
      };
      sessions.set(raw, session);
      void (async () => {
        const verdict = await decide("connect", session, async () => {
          const identity = await identifyClient(remoteIp, resolver);
          session.clientHost = identity.ptr;
          session.verifiedHost = identity.verifiedHost;
          session.senderKey = identity.key;
          return hooks.connect(session);
        });
        await answer("connect", session, verdict, []);
        callback(isAccepted(verdict) ? undefined : toServerError(verdict));
      })();
    },

    onSecure(_socket, raw, callback) {
      const session = sessions.get(raw);
      const cipher = raw.tlsOptions;
      if (session && cipher) session.tls = { protocol: cipher.version ?? "TLS", cipher: cipher.standardName ?? cipher.name };
      callback();
    },

    onMailFrom(address, raw, callback) {
      const session = sessions.get(raw)!;
      session.helo = raw.hostNameAppearsAs || null;
      // MAIL starts a new transaction: recipients of an earlier one are gone (smtp-server resets its envelope too).
      session.recipients = [];
      session.mailFrom = null;
      void (async () => {
        const verdict = await decide("mail", session, () => hooks.mailFrom(session, address.address, address.args || {}));
        if (isAccepted(verdict)) session.mailFrom = address.address;
        await answer("mail", session, verdict, []);
        callback(isAccepted(verdict) ? undefined : toServerError(verdict));
      })();
    },

    onRcptTo(address, raw, callback) {
      const session = sessions.get(raw)!;
      void (async () => {
        let accepted: Session["recipients"][number] | undefined;
        let facts: Record<string, unknown> | undefined;
        const verdict = await decide("rcpt", session, async () => {
          const outcome = await hooks.rcptTo(session, address.address, address.args || {});
          accepted = outcome.accepted;
          facts = outcome.facts;
          return outcome.reply;
        });
        await answer("rcpt", session, verdict, [address.address], undefined, facts);
        if (isAccepted(verdict) && accepted) {
          // A repeated RCPT replaces the earlier one, as smtp-server does with its envelope.
          const same = session.recipients.findIndex((r) => r.address.toLowerCase() === accepted!.address.toLowerCase());
          if (same === -1) session.recipients.push(accepted);
          else session.recipients[same] = accepted;
        }
        callback(isAccepted(verdict) ? undefined : toServerError(verdict));
      })();
    },

    onData(stream, raw, callback) {
      const session = sessions.get(raw)!;
      readMessage(stream)
        .then(async (message) => {
          let facts: Record<string, unknown> = {};
          const verdict = await decide("data", session, async () => {
            const outcome = await hooks.data(session, message);
            facts = outcome.facts ?? {};
            return outcome.reply;
          });
          await answer("data", session, verdict, session.recipients.map((r) => r.address), message, facts);
          return verdict;
        })
        .catch((err) => {
          logger.error("smtp.internal_error", { session: session.id, stage: "data", error: err });
          return INTERNAL_ERROR;
        })
        .then((verdict) => {
          // The transaction is over whatever the outcome.
          session.recipients = [];
          session.mailFrom = null;
          if (isAccepted(verdict)) callback(null, `${verdict.enhanced} ${verdict.text}`);
          else callback(toServerError(verdict));
        });
    },

    onClose(raw) {
      const session = sessions.get(raw);
      if (!session) return;
      hooks.close(session);
      logger.debug("smtp.disconnect", { session: session.id, ip: session.remoteIp });
    },
  });

  certificates.onChange(({ key, cert }) => server.updateSecureContext({ key, cert }));

  server.on("error", (err: NodeJS.ErrnoException) => {
    // Per-connection errors (resets, TLS handshake failures by clients) are routine on a public MX.
    logger.debug("smtp.connection_error", { error: err.message, code: err.code });
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(config.smtp.port, config.smtp.host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const address = server.server.address() as AddressInfo;

  return {
    host: address.address,
    port: address.port,
    get listening() {
      return server.server.listening;
    },
    get sessions() {
      return server.connections.size;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Reads DATA into one buffer, stopping to buffer once the size limit is passed. */
function readMessage(stream: SMTPServerDataStream): Promise<InboundMessage> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (!stream.sizeExceeded) chunks.push(chunk);
    });
    stream.on("error", reject);
    stream.on("end", () => {
      const oversized = stream.sizeExceeded;
      const raw = oversized ? Buffer.alloc(0) : Buffer.concat(chunks, size);
      const received = oversized ? Buffer.concat(chunks) : raw;
      const scanned = received.subarray(0, MAX_HEADER_SCAN);
      // No blank line: a message without body is all header, unless we only saw part of it.
      const end = headerBlockEnd(scanned);
      const headerEnd = end !== -1 ? end : scanned.length === size ? size : 0;
      const headerBlock = scanned.subarray(0, headerEnd).toString("utf8");
      resolve({ raw, size, oversized, headers: parseHeaderBlock(headerBlock), headerBlock, bodyOffset: headerEnd });
    });
  });
}
