// The submission listener (RFC 6409; docs/send-as.md): port 587 with STARTTLS
// and port 465 with implicit TLS (RFC 8314), both with the MX's certificate.
// A client authenticates with an app password (AUTH PLAIN or LOGIN, only once
// the connection is encrypted), may send only as the password's address, and
// gets its 250 only after the message is committed to the outbound queue. Any
// failure of our own answers 421: the client keeps the message and retries.
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import type { Config } from "../config/index.ts";
import type { OutboundMessage } from "../delivery/outbox.ts";
import type { Logger } from "../log.ts";
import { type Decision, decision } from "../mail/decision.ts";
import { formatReply, INTERNAL_ERROR, isAccepted, reply, toServerError } from "../mail/reply.ts";
import { senderKey } from "../policy/identity.ts";
import type { ScanResult } from "../policy/scan.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";
import { createSpool } from "../smtp/spool.ts";
import type { AuthResult, PasswordInfo } from "../store/passwords.ts";
import type { CertificateSource } from "../tls/credentials.ts";
import { hourlyLimitDecision, queuedDecision, submissionRecipientDecision, submittedMessageDecision, submitterDecision } from "./decide.ts";
import { withReceived } from "./message.ts";
// Makes smtp-server honour the authBeforeTlsReply option below.
import "./tls-first.ts";

export interface SubmissionListener {
  host: string;
  /** The STARTTLS port (587). */
  port: number;
  /** The implicit-TLS port (465). */
  tlsPort: number;
  close(): Promise<void>;
}

export interface SubmissionDeps {
  config: Config;
  certificates: CertificateSource;
  logger: Logger;
  /** Checks an app password and throttles failures (store/passwords.ts). */
  authenticate(input: { username: string; password: string; client: string }): Promise<AuthResult>;
  /** Counts a message of this credential in its current hour: its number. */
  countMessage(credentialId: number): Promise<number>;
  /** The rspamd verdict on an outgoing message, or null when no scanner is configured. */
  scan(message: InboundMessage, session: Session, recipients: string[]): Promise<ScanResult | null>;
  /** Resolves with the queue id once the message is committed durably. */
  enqueue(message: OutboundMessage): Promise<number>;
}

const INTERNAL_FAILURE = decision(INTERNAL_ERROR, "internal_error");
const THROTTLED = reply(454, "4.7.0", "Too many failed authentication attempts, please try again later");
const BAD_CREDENTIALS = reply(535, "5.7.8", "Authentication credentials invalid");

export async function startSubmissionListener(deps: SubmissionDeps): Promise<SubmissionListener> {
  const { config, certificates } = deps;
  const spool = createSpool(join(config.dataDir, "submission"));
  const options = (secure: boolean): SMTPServerOptions => ({
    name: config.hostname,
    banner: "mailferry submission",
    key: certificates.current().key,
    cert: certificates.current().cert,
    minVersion: "TLSv1.2",
    secure,
    size: config.smtp.maxSize,
    // AUTH only over TLS (RFC 4954 §4): on 587 AUTH before STARTTLS gets 538, and MAIL before AUTH 530 (RFC 4954 §6).
    authMethods: ["PLAIN", "LOGIN"],
    allowInsecureAuth: false,
    authBeforeTlsReply: "5.7.11 Encryption required for requested authentication mechanism",
    authRequiredMessage: "5.7.0 Authentication required",
    disableReverseLookup: true,
    socketTimeout: config.smtp.socketTimeout,
    closeTimeout: config.smtp.shutdownGrace,
    maxClients: config.smtp.maxClients,
    logger: false,
    onAuth: authHandler(deps),
    onMailFrom: (address, session, callback) => respond(callback, guarded(deps, session, "mail", async () => submitterDecision(credentialOf(session), address.address))),
    onRcptTo: (address, session, callback) =>
      respond(callback, guarded(deps, session, "rcpt", async () => submissionRecipientDecision(address.address, session.envelope.rcptTo.length, limitsOf(config)))),
    onData: (stream, session, callback) => {
      void guarded(deps, session, "data", () => spool.receive(stream).then(({ message, release }) => submit(deps, session, message).finally(release))).then((decided) => {
        if (isAccepted(decided.reply)) callback(null, `${decided.reply.enhanced} ${decided.reply.text}`);
        else callback(toServerError(decided.reply));
      });
    },
  });
  const servers = [new SMTPServer(options(false)), new SMTPServer(options(true))];
  for (const server of servers) {
    certificates.onChange(({ key, cert }) => server.updateSecureContext({ key, cert }));
    server.on("error", (err: NodeJS.ErrnoException) => deps.logger.debug("submission.connection_error", { error: err.message, code: err.code }));
  }
  const { host } = config.submission;
  const close = async () => void (await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));
  try {
    const [port, tlsPort] = [await listen(servers[0]!, config.submission.port, host), await listen(servers[1]!, config.submission.tlsPort, host)];
    return { host, port, tlsPort, close };
  } catch (err) {
    // One port taken: the other, if bound, is let go too, so a failed start leaves nothing listening.
    servers.forEach((s) => s.server.listening && s.server.close());
    throw err;
  }
}

const limitsOf = (config: Config) => ({ messagesPerHour: config.submission.messagesPerHour, recipientsPerMessage: config.submission.recipientsPerMessage });

/** The credential smtp-server keeps as the session's user once AUTH succeeded (it refuses MAIL before). */
const credentialOf = (session: SMTPServerSession) => session.user as unknown as PasswordInfo;

function listen(server: SMTPServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, host, () => {
      server.server.off("error", reject);
      resolve((server.server.address() as AddressInfo).port);
    });
  });
}

/** AUTH PLAIN or LOGIN: throttled per client and per user name, every failure logged. */
function authHandler({ authenticate, logger }: SubmissionDeps): NonNullable<SMTPServerOptions["onAuth"]> {
  return (auth: SMTPServerAuthentication, session, callback) => {
    const ip = session.remoteAddress.replace(/^::ffff:/, "");
    const fields = { session: session.id, ip, user: auth.username, method: auth.method };
    authenticate({ username: auth.username ?? "", password: auth.password ?? "", client: senderKey(ip, null) }).then(
      (result) => {
        if ("credential" in result) {
          logger.info("submission.auth", { ...fields, password: result.credential.name, send_as: result.credential.identity });
          return callback(null, { user: result.credential as never });
        }
        logger.warn("submission.auth_failed", { ...fields, throttled: result.error === "throttled" });
        callback(toServerError(result.error === "throttled" ? THROTTLED : BAD_CREDENTIALS));
      },
      (err) => {
        logger.error("submission.internal_error", { ...fields, stage: "auth", error: err });
        callback(toServerError(INTERNAL_ERROR));
      },
    );
  };
}

/** DATA: the message checks, the hourly count, the scan, then the queue; 250 only once it is committed. */
async function submit(deps: SubmissionDeps, session: SMTPServerSession, message: InboundMessage): Promise<Decision> {
  const credential = credentialOf(session);
  const refused = submittedMessageDecision(credential, message);
  if (refused) return refused;
  const limited = hourlyLimitDecision(await deps.countMessage(credential.id), limitsOf(deps.config));
  if (limited) return limited;
  const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
  const to = session.envelope.rcptTo.map((r) => r.address);
  const ip = session.remoteAddress.replace(/^::ffff:/, "");
  const cipher = session.tlsOptions;
  const tls = cipher ? { protocol: cipher.version ?? "TLS", cipher: cipher.standardName ?? cipher.name } : null;
  const scanned = await deps.scan(message, { id: session.id, remoteIp: ip, remotePort: session.remotePort, clientHost: null, verifiedHost: null, senderKey: ip, allowlisted: false, helo: session.hostNameAppearsAs || null, tls, mailFrom: from, recipients: [] }, to);
  if (scanned?.refusal) return scanned.refusal;
  const raw = await withReceived(message, { helo: session.hostNameAppearsAs, ip, hostname: deps.config.hostname, id: session.id, tls: session.secure });
  return queuedDecision(await deps.enqueue({ from, to, raw, submitter: from }));
}

/** Runs a stage's decision and logs it; one that throws answers 421. */
async function guarded(deps: SubmissionDeps, session: SMTPServerSession, stage: string, decide: () => Promise<Decision>): Promise<Decision> {
  let decided: Decision;
  try {
    decided = await decide();
  } catch (err) {
    deps.logger.error("submission.internal_error", { session: session.id, stage, error: err });
    decided = INTERNAL_FAILURE;
  }
  const credential = session.user ? credentialOf(session) : null;
  deps.logger[decided.reply.code >= 400 ? "warn" : "info"]("submission.verdict", {
    session: session.id,
    ip: session.remoteAddress,
    stage,
    password: credential?.name,
    send_as: credential?.identity,
    reply: formatReply(decided.reply),
    reason: decided.reason,
    ...decided.facts,
  });
  return decided;
}

function respond(callback: (err?: Error | null) => void, decided: Promise<Decision>) {
  void decided.then((d) => callback(isAccepted(d.reply) ? undefined : toServerError(d.reply)));
}
