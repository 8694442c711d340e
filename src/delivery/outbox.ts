// Messages mailferry writes itself (DSNs, vacation replies, verification
// mails) are the only mail it queues: they are stored before the session
// moves on and sent with retries, so a sender's bounce is not lost when its
// MX is briefly down. Every one is DKIM-signed here as it leaves, whoever
// queued it (the server or a CLI command writing the table).
import { Readable } from "node:stream";
import type { Logger } from "../log.ts";
import type { DB } from "../store/db.ts";
import { dueOutbox, enqueue, outboxDone, outboxRetry } from "../store/deliveries.ts";
import { signOriginated } from "./originated.ts";
import type { Relay } from "./relay.ts";

export interface Outbox {
  queue(rcptTo: string, raw: Buffer): Promise<void>;
  /** Sends what is due now; resolves when this round is done. */
  runDue(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

const GIVE_UP_AFTER_MS = 2 * 86_400_000;
const POLL_MS = 60_000;

export interface OutboxDeps {
  db: DB;
  relay: Relay;
  /** The server's host name: its notices are signed for it (see originated.ts). */
  hostname: string;
  outboundPort: number;
  logger: Logger;
  now?: () => number;
}

export function createOutbox({ db, relay, hostname, outboundPort, logger, now = Date.now }: OutboxDeps): Outbox {
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | null = null;
  let again = false;

  type Entry = Awaited<ReturnType<typeof dueOutbox>>[number];

  // Signed at each attempt rather than when queued: a retry carries the key that signs now.
  async function signed(entry: Entry): Promise<{ message: Buffer; signedBy: string | null }> {
    const raw = Buffer.from(entry.raw);
    try {
      const result = await signOriginated(db, hostname, raw);
      if (!result.signedBy) logger.warn("outbox.unsigned", { id: entry.id, reason: "no DKIM key covers the From domain" });
      return result;
    } catch (err) {
      // Sent unsigned rather than not at all: a sender's bounce matters more than its signature.
      logger.error("outbox.unsigned", { id: entry.id, error: err });
      return { message: raw, signedBy: null };
    }
  }

  async function attempt(entry: Entry) {
    const domain = entry.rcpt_to.slice(entry.rcpt_to.lastIndexOf("@") + 1).toLowerCase();
    const { message, signedBy } = await signed(entry);
    const [result] = await relay.send([{ from: "", to: [{ address: entry.rcpt_to, domain, port: outboundPort }], message: () => Readable.from([message]) }]);
    const answer = result!.reply;
    const fields = { id: entry.id, to: entry.rcpt_to, reply: `${answer.code} ${answer.enhanced} ${answer.text}`, attempts: entry.attempts + 1, dkim: signedBy ?? undefined };
    if (answer.code < 400) {
      await outboxDone(db, entry.id);
      logger.info("outbox.sent", fields);
    } else if (answer.code >= 500 || now() - entry.created_at > GIVE_UP_AFTER_MS) {
      await outboxDone(db, entry.id);
      logger.warn("outbox.dropped", fields);
    } else {
      const backoff = Math.min(2 ** entry.attempts * 60_000, 4 * 3_600_000);
      await outboxRetry(db, entry.id, entry.attempts + 1, now() + backoff, fields.reply);
      logger.info("outbox.deferred", { ...fields, retry_in_s: backoff / 1000 });
    }
  }

  // One round at a time; a message queued during a round gets another round right after.
  const runDue = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          for (const entry of await dueOutbox(db, now())) await attempt(entry);
        } catch (err) {
          logger.error("outbox.failed", { error: err });
        }
      } while (again);
      running = null;
    })();
    return running;
  };

  return {
    async queue(rcptTo, raw) {
      await enqueue(db, rcptTo, raw, now());
      void runDue();
    },
    runDue,
    start() {
      timer = setInterval(() => void runDue(), POLL_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
