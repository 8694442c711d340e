// Worker threads for mailauth's CPU-heavy work: verifying a message
// (SPF/DKIM/DMARC/ARC/BIMI) and composing each sealed (maybe signed) copy. On
// one thread these cost more than the rest of the pipeline together (two or
// three RSA signatures per copy); in workers they use the other cores while the main
// thread keeps speaking SMTP. A job that fails rejects (the session answers
// 421); a worker that dies fails its jobs and is replaced on the next job.
// With `[forwarding] worker_threads = 0` (the default on 1 or 2 cores) the same
// work runs on the main thread instead: no second VM's memory.
import type { Copy, CopyInput } from "../delivery/compose.ts";
import { DnsError, type Resolver } from "../dns/resolver.ts";
import type { Logger } from "../log.ts";
import type { MessageParts } from "../mail/message.ts";
import type { AuthResults, AuthSession } from "./inbound.ts";

export type WorkerRequest =
  | { kind: "authenticate"; id: number; session: AuthSession; message: MessageParts; hostname: string }
  | { kind: "compose"; id: number; input: CopyInput }
  | DnsAnswer;

export interface DnsAnswer {
  kind: "dns-answer";
  id: number;
  records?: string[][] | string[];
  error?: { code: string; name: string; rrtype: string };
}

export type WorkerReply =
  | { kind: "done"; id: number; value: unknown }
  | { kind: "failed"; id: number; message: string }
  | { kind: "dns"; id: number; name: string; rrtype: string };

export interface AuthWorkers {
  /** A spooled message goes to the worker as its file's path, a small one as a copy of its bytes. */
  authenticate(session: AuthSession, message: MessageParts): Promise<AuthResults>;
  compose(input: CopyInput): Promise<Copy>;
  /** Stops the workers; jobs still running are rejected. */
  close(): Promise<void>;
}

export interface AuthWorkerOptions {
  hostname: string;
  lookup: Resolver["forMailauth"];
  logger: Logger;
  /** Threads ([forwarding] worker_threads); 0 runs the work on the calling thread. */
  size: number;
  /** The worker script (tests start a deliberately broken one). */
  entry?: string | URL;
}

interface Job {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
}

/** Structured cloning turns a Buffer into a plain Uint8Array: a Buffer view of the same bytes, no copy. */
export const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The message parts as a worker receives them: Buffers again, a spool file's path as it was. */
export function fromClone({ head, body }: MessageParts): MessageParts {
  return { head: asBuffer(head), body: "bytes" in body ? { bytes: asBuffer(body.bytes) } : body };
}

// From source this module is src/auth/workers.ts. In the compiled binary every module
// has the bundle's URL and the worker, a second entry point of `bun build --compile`
// (package.json "build"), sits under auth/ of the bundle's root (src/).
const DEFAULT_ENTRY = import.meta.url.endsWith("/auth/workers.ts") ? new URL("./worker.ts", import.meta.url) : new URL("./auth/worker.ts", import.meta.url);

export function startAuthWorkers({ hostname, lookup, logger, size, entry = DEFAULT_ENTRY }: AuthWorkerOptions): AuthWorkers {
  if (size === 0) return onThisThread(hostname, lookup);
  const slots: (Slot | null)[] = Array.from({ length: size }, () => null);
  let sequence = 0;
  let closed = false;

  function spawn(index: number): Slot {
    const worker = new Worker(entry, { smol: true });
    const slot: Slot = { worker, jobs: new Map() };
    const fail = (reason: string) => {
      if (slots[index] !== slot) return;
      slots[index] = null;
      if (!closed) logger.error("auth_worker.failed", { worker: index, reason, jobs: slot.jobs.size });
      for (const job of slot.jobs.values()) job.reject(new Error(`authentication worker stopped: ${reason}`));
      slot.jobs.clear();
      worker.terminate();
    };
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      if (reply.kind === "dns") return void answerDns(worker, reply);
      const job = slot.jobs.get(reply.id);
      if (!job) return;
      slot.jobs.delete(reply.id);
      if (reply.kind === "done") job.resolve(reply.value);
      else job.reject(new Error(reply.message));
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      // Bun puts a code frame before the error's own line ("error: <message>").
      fail(/^error: (.*)$/m.exec(event.message)?.[1] ?? (event.message || "uncaught error"));
    };
    worker.addEventListener("close", () => fail("exited"));
    slots[index] = slot;
    return slot;
  }

  async function answerDns(worker: Worker, question: { id: number; name: string; rrtype: string }) {
    let answer: DnsAnswer;
    try {
      answer = { kind: "dns-answer", id: question.id, records: await lookup(question.name, question.rrtype) };
    } catch (err) {
      const error = err instanceof DnsError ? { code: err.code, name: err.hostname, rrtype: err.rrtype } : { code: "ESERVFAIL", name: question.name, rrtype: question.rrtype };
      answer = { kind: "dns-answer", id: question.id, error };
    }
    worker.postMessage(answer);
  }

  /** The least busy worker, started if its slot is empty. */
  function pick(): Slot {
    let best = -1;
    for (let i = 0; i < slots.length; i++) {
      const load = slots[i]?.jobs.size ?? 0;
      if (best === -1 || load < (slots[best]?.jobs.size ?? 0)) best = i;
    }
    return slots[best] ?? spawn(best);
  }

  function submit<T>(request: Exclude<WorkerRequest, DnsAnswer>): Promise<T> {
    if (closed) return Promise.reject(new Error("authentication workers are stopped"));
    const slot = pick();
    return new Promise<T>((resolve, reject) => {
      slot.jobs.set(request.id, { resolve: resolve as (value: unknown) => void, reject });
      slot.worker.postMessage(request);
    });
  }

  return {
    authenticate: (session, { head, body }) =>
      submit<AuthResults>({ kind: "authenticate", id: ++sequence, session: { remoteIp: session.remoteIp, helo: session.helo, mailFrom: session.mailFrom }, message: { head, body }, hostname }),
    async compose(input) {
      const copy = await submit<Copy>({ kind: "compose", id: ++sequence, input });
      return { ...copy, head: asBuffer(copy.head) };
    },
    async close() {
      closed = true;
      for (const slot of slots) {
        if (!slot) continue;
        for (const job of slot.jobs.values()) job.reject(new Error("authentication workers are stopped"));
        slot.jobs.clear();
        slot.worker.terminate();
      }
      slots.fill(null);
    },
  };
}

/** The same work without a worker: mailauth loads on the first message, as it would in a worker. */
function onThisThread(hostname: string, lookup: Resolver["forMailauth"]): AuthWorkers {
  return {
    async authenticate({ remoteIp, helo, mailFrom }, message) {
      const { authenticateInbound } = await import("./inbound.ts");
      return authenticateInbound({ remoteIp, helo, mailFrom }, message, hostname, lookup);
    },
    async compose(input) {
      const { composeCopy } = await import("../delivery/compose.ts");
      return composeCopy(input);
    },
    close: async () => {},
  };
}
