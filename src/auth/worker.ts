// The worker thread of src/auth/workers.ts: mailauth's CPU-heavy work
// (verifying SPF/DKIM/DMARC/ARC, ARC sealing and, when the From is rewritten,
// DKIM signing: two or three RSA signatures per copy) runs here so the main thread keeps serving SMTP.
// DNS questions go back to the main thread's resolver: one cache, one
// configuration, the same answers as everywhere else.
import { composeCopy } from "../delivery/compose.ts";
import { DnsError, type DnsErrorCode } from "../dns/resolver.ts";
import { authenticateInbound } from "./inbound.ts";
import { asBuffer, fromClone, type DnsAnswer, type WorkerReply, type WorkerRequest } from "./workers.ts";

declare const self: Worker;

const pendingDns = new Map<number, { resolve: (records: string[][] | string[]) => void; reject: (err: Error) => void }>();
let dnsSequence = 0;

function lookup(name: string, rrtype: string): Promise<string[][] | string[]> {
  return new Promise((resolve, reject) => {
    const id = ++dnsSequence;
    pendingDns.set(id, { resolve, reject });
    self.postMessage({ kind: "dns", id, name, rrtype } satisfies WorkerReply);
  });
}

function answerDns(answer: DnsAnswer): void {
  const waiting = pendingDns.get(answer.id);
  if (!waiting) return;
  pendingDns.delete(answer.id);
  if (answer.records) waiting.resolve(answer.records);
  // mailauth tells "no record" from "temporary error" by the node:dns code.
  else waiting.reject(new DnsError(answer.error!.code as DnsErrorCode, answer.error!.name, answer.error!.rrtype));
}

async function run(request: Exclude<WorkerRequest, DnsAnswer>): Promise<unknown> {
  if (request.kind === "authenticate") return authenticateInbound(request.session, fromClone(request.message), request.hostname, lookup);
  return composeCopy({ ...request.input, head: asBuffer(request.input.head) });
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  if (request.kind === "dns-answer") return answerDns(request);
  run(request).then(
    (value) => self.postMessage({ kind: "done", id: request.id, value } satisfies WorkerReply),
    (err: unknown) => self.postMessage({ kind: "failed", id: request.id, message: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
};
