// Messages mailferry writes itself (DSNs) are the only mail it queues: they
// are stored before the session moves on and sent with retries, so a
// sender's bounce is not lost when its MX is briefly down.
import { Readable } from "node:stream";
import type { Logger } from "../log.ts";
import type { DB } from "../store/db.ts";
import { dueOutbox, enqueue, outboxDone, outboxRetry } from "../store/deliveries.ts";
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

export function createOutbox({ db, relay, outboundPort, logger, now = Date.now }: { db: DB; relay: Relay; outboundPort: number; logger: Logger; now?: () => number }): Outbox {
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | null = null;
  let again = false;

  async function attempt(entry: Awaited<ReturnType<typeof dueOutbox>>[number]) {
    const domain = entry.rcpt_to.slice(entry.rcpt_to.lastIndexOf("@") + 1).toLowerCase();
    const [result] = await relay.send([{ from: "", to: [{ address: entry.rcpt_to, domain, port: outboundPort }], message: () => Readable.from([Buffer.from(entry.raw)]) }]);
    const answer = result!.reply;
    const fields = { id: entry.id, to: entry.rcpt_to, reply: `${answer.code} ${answer.enhanced} ${answer.text}`, attempts: entry.attempts + 1 };
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
