// The MX listener: smtp-server speaks the protocol, the stage hooks decide,
// and this layer turns each decision into the reply on the wire, the log line
// and the mail-log event. A hook that throws answers 421: the sender keeps
// the message and retries, so nothing is accepted and then lost.
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import type { Config } from "../config/index.ts";
import type { Resolver } from "../dns/resolver.ts";
import { identifyClient } from "../policy/identity.ts";
import type { Logger } from "../log.ts";
import { mailLogEvent } from "../store/events.ts";
import type { EventStage, NewEvent } from "../store/schema.ts";
import { type Decision, decision } from "../mail/decision.ts";
import type { StageHooks, StageOutcome } from "./hooks.ts";
import { formatReply, INTERNAL_ERROR, isAccepted, toServerError } from "../mail/reply.ts";
import type { AcceptedRecipient, InboundMessage, Session } from "./session.ts";
import { createSpool, type Spool } from "./spool.ts";
import { type Conduct, deadlineDecision, errorLimitDecision, newConduct, summaryDecision, tallyRefusal } from "./conduct.ts";
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

export async function startMxListener(deps: ListenerDeps): Promise<MxListener> {
  const { config, certificates } = deps;
  const tls = certificates.current();
  const conduct = new WeakMap<SMTPServerSession, Tracked>();
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
    ...stageHandlers(deps, createSpool(config.dataDir), conduct),
  });
  const watchdog = setInterval(() => closeOverdue(server, conduct, deps), DEADLINE_CHECK_MS);
  watchdog.unref();

  certificates.onChange(({ key, cert }) => server.updateSecureContext({ key, cert }));
  server.on("error", (err: NodeJS.ErrnoException) => {
    // Per-connection errors (resets, TLS handshake failures by clients) are routine on a public MX.
    deps.logger.debug("smtp.connection_error", { error: err.message, code: err.code });
  });
  await listen(server, config.smtp.port, config.smtp.host);
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
    close: () => {
      clearInterval(watchdog);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How often session and DATA deadlines are checked: their precision. */
const DEADLINE_CHECK_MS = 1000;

/** A connection's session with what the listener counts about it. */
interface Tracked {
  session: Session;
  conduct: Conduct;
}

/** 421 and close for each session past its time or too long in DATA (docs/delivery-and-authentication.md, "Session limits"). */
function closeOverdue(server: SMTPServer, tracked: WeakMap<SMTPServerSession, Tracked>, deps: ListenerDeps) {
  const answer = answererFor(deps);
  for (const connection of server.connections as Set<{ session: SMTPServerSession; send(code: number, text: string, context: false): void }>) {
    const entry = tracked.get(connection.session);
    const overdue = entry && deadlineDecision(entry.conduct, Date.now(), deps.config.smtp);
    if (!entry || !overdue) continue;
    void answer("connect", entry.session, overdue, []);
    // smtp-server closes the connection after any 421.
    connection.send(overdue.reply.code, `${overdue.reply.enhanced} ${overdue.reply.text}`, false);
  }
}

function listen(server: SMTPServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
}

type Handlers = Required<Pick<SMTPServerOptions, "onConnect" | "onSecure" | "onMailFrom" | "onRcptTo" | "onData" | "onClose">>;

/** What every stage handler uses: the sessions by connection, the hook runner and the answerer. */
interface Stages {
  deps: ListenerDeps;
  /** Where DATA goes: memory for small messages, a spool file for large ones. */
  spool: Spool;
  sessions: WeakMap<SMTPServerSession, Session>;
  conduct: WeakMap<SMTPServerSession, Tracked>;
  decide: ReturnType<typeof deciderFor>;
  answer: ReturnType<typeof answererFor>;
}

/**
 * smtp-server's callbacks: each stage asks its hook, stores what the hook
 * returned on the session (the listener alone writes it), and answers.
 */
function stageHandlers(deps: ListenerDeps, spool: Spool, conduct: WeakMap<SMTPServerSession, Tracked>): Handlers {
  const stages: Stages = { deps, spool, sessions: new WeakMap(), conduct, decide: deciderFor(deps), answer: answererFor(deps) };
  return {
    onConnect: connectHandler(stages),
    onSecure(_socket, raw, callback) {
      const session = stages.sessions.get(raw);
      const cipher = raw.tlsOptions;
      if (session && cipher) session.tls = { protocol: cipher.version ?? "TLS", cipher: cipher.standardName ?? cipher.name };
      callback();
    },
    onMailFrom: mailHandler(stages),
    onRcptTo: rcptHandler(stages),
    onData: timedData(stages, dataHandler(stages)),
    onClose(raw) {
      const session = stages.sessions.get(raw);
      const conduct = stages.conduct.get(raw)?.conduct;
      if (!session || !conduct) return;
      conduct.closed = true;
      deps.hooks.close(session);
      if (conduct.unlogged) void stages.answer("rcpt", session, summaryDecision(conduct.unlogged), conduct.unlogged.sample);
      deps.logger.debug("smtp.disconnect", { session: session.id, ip: session.remoteIp });
    },
  };
}

/** Marks DATA for the deadline, from the 354 to the answer; an accepted message clears the error count (as Postfix does). */
function timedData({ conduct }: Stages, handler: Handlers["onData"]): Handlers["onData"] {
  return (stream, raw, callback) => {
    const tracked = conduct.get(raw)?.conduct;
    if (tracked) tracked.dataStartedAt = Date.now();
    handler(stream, raw, (err, message) => {
      if (tracked) {
        tracked.dataStartedAt = null;
        if (!err) tracked.errors = 0;
      }
      callback(err, message);
    });
  };
}

/**
 * The reply to a MAIL or RCPT decision: a refusal counts toward the hard
 * error limit, and the one that reaches it is answered 421 (the connection closes).
 */
async function withErrorLimit({ deps, answer }: Stages, tracked: Tracked, decided: Decision): Promise<Decision> {
  if (isAccepted(decided.reply)) return decided;
  const closing = errorLimitDecision(++tracked.conduct.errors, deps.config.smtp.hardErrorLimit);
  if (!closing) return decided;
  await answer("rcpt", tracked.session, closing, []);
  return closing;
}

function connectHandler({ deps, sessions, conduct, decide, answer }: Stages): Handlers["onConnect"] {
  return (raw, callback) => {
    const session = newSession(raw);
    const tracked = { session, conduct: newConduct(Date.now()) };
    sessions.set(raw, session);
    conduct.set(raw, tracked);
    void (async () => {
      const outcome = await decide("connect", session, async () => {
        const identity = await identifyClient(session.remoteIp, deps.resolver);
        session.clientHost = identity.ptr;
        session.verifiedHost = identity.verifiedHost;
        session.senderKey = identity.key;
        return deps.hooks.connect(session);
      });
      if (outcome.allowlisted !== undefined) session.allowlisted = outcome.allowlisted;
      // The client left while its connect stage ran: release what the stage counted (onClose came too early to).
      if (tracked.conduct.closed) deps.hooks.close(session);
      await answer("connect", session, outcome.decision, []);
      respond(callback, outcome.decision);
    })();
  };
}

function mailHandler(stages: Stages): Handlers["onMailFrom"] {
  const { deps, sessions, conduct, decide, answer } = stages;
  return (address, raw, callback) => {
    const session = sessions.get(raw)!;
    session.helo = raw.hostNameAppearsAs || null;
    // MAIL starts a new transaction: recipients of an earlier one are gone (smtp-server resets its envelope too).
    session.recipients = [];
    session.mailFrom = null;
    void (async () => {
      const outcome = await decide("mail", session, () => deps.hooks.mailFrom(session, address.address, address.args || {}));
      if (outcome.allowlisted !== undefined) session.allowlisted = outcome.allowlisted;
      if (isAccepted(outcome.decision.reply)) session.mailFrom = address.address;
      await answer("mail", session, outcome.decision, []);
      respond(callback, await withErrorLimit(stages, conduct.get(raw)!, outcome.decision));
    })();
  };
}

function rcptHandler(stages: Stages): Handlers["onRcptTo"] {
  const { deps, sessions, conduct, decide, answer } = stages;
  return (address, raw, callback) => {
    const session = sessions.get(raw)!;
    const tracked = conduct.get(raw)!;
    void (async () => {
      const outcome = await decide("rcpt", session, () => deps.hooks.rcptTo(session, address.address, address.args || {}));
      const accepted = isAccepted(outcome.decision.reply);
      // Refused recipients past the first few of a session share one mail-log row, written when it ends.
      if (accepted || tallyRefusal(tracked.conduct, outcome.decision, address.address) === "log") await answer("rcpt", session, outcome.decision, [address.address]);
      if (accepted && outcome.accepted) addRecipient(session, outcome.accepted);
      respond(callback, await withErrorLimit(stages, tracked, outcome.decision));
    })();
  };
}

function dataHandler({ deps, spool, sessions, decide, answer }: Stages): Handlers["onData"] {
  return (stream, raw, callback) => {
    const session = sessions.get(raw)!;
    spool
      .receive(stream)
      .then(async ({ message, release }) => {
        try {
          const { decision } = await decide("data", session, async () => ({ decision: await deps.hooks.data(session, message) }));
          await answer("data", session, decision, session.recipients.map((r) => r.address), message);
          return decision;
        } finally {
          release();
        }
      })
      .catch((err) => {
        deps.logger.error("smtp.internal_error", { session: session.id, stage: "data", error: err });
        return INTERNAL_FAILURE;
      })
      .then((decision) => {
        // The transaction is over whatever the outcome.
        session.recipients = [];
        session.mailFrom = null;
        if (isAccepted(decision.reply)) callback(null, `${decision.reply.enhanced} ${decision.reply.text}`);
        else callback(toServerError(decision.reply));
      });
  };
}

function newSession(raw: SMTPServerSession): Session {
  const remoteIp = raw.remoteAddress.replace(/^::ffff:/, "");
  return { id: raw.id, remoteIp, remotePort: raw.remotePort, clientHost: null, verifiedHost: null, senderKey: remoteIp, allowlisted: false, helo: null, tls: null, mailFrom: null, recipients: [] };
}

/** A repeated RCPT replaces the earlier one, as smtp-server does with its envelope. */
function addRecipient(session: Session, accepted: AcceptedRecipient) {
  const same = session.recipients.findIndex((r) => r.address.toLowerCase() === accepted.address.toLowerCase());
  if (same === -1) session.recipients.push(accepted);
  else session.recipients[same] = accepted;
}

const respond = (callback: (err?: Error | null) => void, decision: Decision) => callback(isAccepted(decision.reply) ? undefined : toServerError(decision.reply));

const INTERNAL_FAILURE = decision(INTERNAL_ERROR, "internal_error");

/** Runs a stage hook; one that throws answers 421 (the sender keeps the message and retries). */
function deciderFor({ logger }: ListenerDeps) {
  return async (stage: EventStage, session: Session, hook: () => Promise<StageOutcome>): Promise<StageOutcome> => {
    try {
      return await hook();
    } catch (err) {
      logger.error("smtp.internal_error", { session: session.id, ip: session.remoteIp, stage, error: err });
      return { decision: INTERNAL_FAILURE };
    }
  };
}

/** The log line and the mail-log event of a stage's decision; a failed write never changes the reply. */
function answererFor({ logger, recordEvent }: ListenerDeps) {
  return async (stage: EventStage, session: Session, decided: Decision, recipients: string[], message?: InboundMessage) => {
    logger[decided.reply.code >= 400 ? "warn" : "info"]("smtp.verdict", {
      session: session.id,
      ip: session.remoteIp,
      stage,
      reply: formatReply(decided.reply),
      reason: decided.reason,
      from: session.mailFrom ?? undefined,
      rcpt: recipients.length ? recipients : undefined,
      size: message?.size,
    });
    const client = { helo: session.helo, client_host: session.clientHost, verified_host: session.verifiedHost, sender_key: session.senderKey, tls: session.tls, size: message?.size };
    const event = mailLogEvent({ at: Date.now(), sessionId: session.id, remoteIp: session.remoteIp, stage, decision: decided, mailFrom: session.mailFrom, recipients, ...(message ? { message } : {}), detail: client });
    await recordEvent(event).catch((err) => logger.error("events.write_failed", { session: session.id, error: err }));
  };
}
