// Destination MX servers for tests: real smtp-server instances on 127.0.0.x
// that record every envelope and message, and can be told to refuse
// recipients, fail DATA, drop the connection mid-DATA or break STARTTLS.
import net from "node:net";
import { SMTPServer, type SMTPServerSession } from "smtp-server";
import { generateSelfSigned } from "../../src/tls/credentials.ts";

export interface SinkMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  secure: boolean;
  tlsVersion: string | null;
  helo: string;
  remoteAddress: string;
  /** The authenticated user, when the sink requires AUTH. */
  user: string | null;
}

export interface SinkReply {
  code: number;
  text: string;
}

export interface SinkOptions {
  host?: string;
  /** 0 for any free port. */
  port?: number;
  /** `starttls` offers working STARTTLS, `none` offers none, `broken` offers it and then fails the handshake. */
  tls?: "starttls" | "none" | "broken";
  /** Reply for a recipient at RCPT TO; undefined accepts. */
  onRcpt?: (rcpt: string, mailFrom: string) => SinkReply | undefined;
  /** Reply at the end of DATA; undefined accepts with 250. */
  onData?: (message: SinkMessage) => SinkReply | undefined;
  /** Destroy the connection once this many DATA bytes arrived, without replying. */
  dropAfterDataBytes?: number;
  /** Certificate for STARTTLS; default: a self-signed one for sink.test. */
  credentials?: { cert: string; key: string };
  /** Require SMTP AUTH (after STARTTLS) with these credentials, as a smarthost does. */
  auth?: { user: string; pass: string };
  /** Close a connection idle this long, with `421` first (smtp-server's socketTimeout). */
  idleTimeoutMs?: number;
  /** Answer RSET as an unknown command (`500`), as a broken server might. */
  refuseRset?: boolean;
}

export interface Sink {
  host: string;
  port: number;
  messages: SinkMessage[];
  /** TCP connections accepted so far (a broken-TLS attempt counts too). */
  readonly connections: number;
  /** Connections open right now (not counting broken-TLS attempts). */
  readonly open: number;
  /** Destroys every open connection at once, as a crashing server would. */
  dropConnections(): void;
  /** Resolves once `count` messages arrived, rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

let credentials: { cert: string; key: string } | undefined;
const sinkCredentials = () => (credentials ??= generateSelfSigned("sink.test"));

export async function startSink(options: SinkOptions = {}): Promise<Sink> {
  const host = options.host ?? "127.0.0.1";
  const tlsMode = options.tls ?? "starttls";
  const messages: SinkMessage[] = [];
  let connections = 0;
  let open = 0;
  const waiters: (() => void)[] = [];
  const { cert, key } = options.credentials ?? sinkCredentials();

  const server = new SMTPServer({
    name: "sink.test",
    key,
    cert,
    authOptional: !options.auth,
    disabledCommands: [...(tlsMode === "none" ? ["STARTTLS"] : []), ...(options.auth ? [] : ["AUTH"]), ...(options.refuseRset ? ["RSET"] : [])],
    ...(options.idleTimeoutMs ? { socketTimeout: options.idleTimeoutMs } : {}),
    onAuth(auth, _session, callback) {
      const ok = options.auth && auth.username === options.auth.user && auth.password === options.auth.pass;
      callback(ok ? null : Object.assign(new Error("5.7.8 Authentication failed"), { responseCode: 535 }), ok ? { user: auth.username } : undefined);
    },
    disableReverseLookup: true,
    closeTimeout: 500,
    logger: false,
    onConnect(_session, callback) {
      if (tlsMode !== "broken") connections++;
      open++;
      callback();
    },
    onClose() {
      open--;
    },
    onRcptTo(address, session, callback) {
      const answer = options.onRcpt?.(address.address, session.envelope.mailFrom ? session.envelope.mailFrom.address : "");
      callback(answer ? Object.assign(new Error(answer.text), { responseCode: answer.code }) : undefined);
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      let dropped = false;
      stream.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        bytes += chunk.length;
        if (!dropped && options.dropAfterDataBytes !== undefined && bytes >= options.dropAfterDataBytes) {
          dropped = true;
          // Simulates a destination that dies mid-transfer: no reply at all.
          dropConnections();
        }
      });
      stream.on("end", () => {
        if (dropped) return;
        const message: SinkMessage = {
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          secure: session.secure,
          tlsVersion: session.tlsOptions ? (session.tlsOptions.version ?? null) : null,
          helo: session.hostNameAppearsAs,
          remoteAddress: session.remoteAddress,
          user: typeof session.user === "string" ? session.user : null,
        };
        const answer = options.onData?.(message);
        if (answer) return callback(Object.assign(new Error(answer.text), { responseCode: answer.code }));
        messages.push(message);
        waiters.splice(0).forEach((wake) => wake());
        callback(null, "2.0.0 sink accepted");
      });
    },
  });
  server.on("error", () => {});
  const dropConnections = () => (server as unknown as { connections: Set<{ _socket: net.Socket }> }).connections.forEach((c) => c._socket.destroy());

  // Broken TLS: a front that relays the conversation but answers STARTTLS itself with
  // "220" followed by bytes that are not TLS, as a faulty middlebox would.
  let front: net.Server | undefined;
  let innerPort = 0;
  if (tlsMode === "broken") {
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    innerPort = (server.server.address() as net.AddressInfo).port;
    front = net.createServer((client) => {
      connections++;
      const inner = net.connect(innerPort, host);
      inner.pipe(client);
      client.on("data", (chunk) => {
        if (/^STARTTLS\r?\n/im.test(chunk.toString("latin1"))) {
          inner.unpipe(client);
          inner.destroy();
          client.write("220 2.0.0 Ready to start TLS\r\n");
          client.end("this is not a TLS server hello\r\n");
          return;
        }
        inner.write(chunk);
      });
      client.on("error", () => inner.destroy());
      inner.on("error", () => client.destroy());
      client.on("close", () => inner.destroy());
    });
  }
  const listener = front ?? server.server;
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    const onListening = () => {
      listener.off("error", reject);
      resolve();
    };
    if (front) front.listen(options.port ?? 0, host, onListening);
    else server.listen(options.port ?? 0, host, onListening);
  });
  const port = (listener.address() as net.AddressInfo).port;

  return {
    host,
    port,
    messages,
    get connections() {
      return connections;
    },
    get open() {
      return open;
    },
    dropConnections,
    waitForMessages(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sink ${host}:${port}: ${messages.length} of ${count} messages after ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (messages.length >= count) {
            clearTimeout(timer);
            resolve(messages);
          } else waiters.push(check);
        };
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        front?.close();
        server.close(() => resolve());
      }),
  };
}

/**
 * Several sinks on different loopback addresses sharing one port, as
 * destination MX hosts do (mailferry delivers to one configured port).
 */
export async function startSinks(hosts: (SinkOptions & { host: string })[]): Promise<Sink[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await startSink(hosts[0]);
    const rest: Sink[] = [];
    try {
      for (const options of hosts.slice(1)) rest.push(await startSink({ ...options, port: first.port }));
      return [first, ...rest];
    } catch {
      await Promise.all([first, ...rest].map((s) => s.close()));
    }
  }
  throw new Error("no port free on all sink addresses");
}
