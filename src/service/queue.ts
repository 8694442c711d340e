// The outbound queue for admins (docs/delivery-and-authentication.md,
// "Outbound queue"): the list, and retry now / delete, audited, the same for
// the UI, the API and the CLI.
import { UserError } from "../errors.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { deleteQueued, findQueued, listQueue, retryQueuedNow } from "../store/deliveries.ts";
import { isoTime } from "./json.ts";

export type QueueItem = Awaited<ReturnType<typeof listQueue>>[number];

/** A queued message as JSON (API and `queue list --json`): times as ISO text, never the message itself. */
export function queueItemJson(e: QueueItem) {
  return {
    id: e.id,
    from: e.mail_from,
    submitter: e.submitter,
    recipients: e.recipients.map((r) => ({ address: r.address, status: r.status, last_reply: r.reply ? `${r.reply.code} ${r.reply.enhanced} ${r.reply.text}` : null })),
    attempts: e.attempts,
    next_attempt_at: isoTime(e.next_attempt),
    last_error: e.last_error,
    queued_at: isoTime(e.created_at),
    delay_notice_at: isoTime(e.delay_notice_at),
  };
}

export interface QueueServiceDeps {
  db: DB;
  now: () => number;
  /** Sends what is due at once (the server's outbox); the CLI has none: the running server finds it within its poll (a minute). */
  runQueue?: () => void;
}

export function queueService({ db, now, runQueue }: QueueServiceDeps) {
  const notQueued = (id: number) => new UserError("not_found", `no message ${id} in the outbound queue (sent, given up or deleted)`, "id");
  return {
    list: () => listQueue(db),
    find: (id: number) => findQueued(db, id),
    /** Makes the message due now; its schedule goes on from the next attempt. */
    async retry(actor: Actor, id: number) {
      if (!(await retryQueuedNow(db, id, now()))) throw notQueued(id);
      await audit(db, actor, "queue.retry", String(id), null, null, now());
      runQueue?.();
    },
    /** Removes the message unsent: no DSN goes to its submitter. */
    async remove(actor: Actor, id: number) {
      const before = await findQueued(db, id);
      if (!before || !(await deleteQueued(db, id))) throw notQueued(id);
      await audit(db, actor, "queue.delete", String(id), queueItemJson(before), null, now());
    },
  };
}
