// The DATA answer from the targets' replies (docs/delivery-and-authentication.md).
// The sending MTA is the retry queue, so a temporary failure of any target is
// answered temporarily (targets that accepted are remembered and skipped on retry).
import { type Decision, decision, type Reason } from "../mail/decision.ts";
import { type Reply, reply } from "../mail/reply.ts";

export interface TargetOutcome {
  target: string;
  originalRecipient: string;
  reply: Reply;
  /** Set when the reply is ours (e.g. the delivery time bound), not the destination's. */
  reason?: Reason;
  remoteMta: string | null;
}

export interface DataAnswer extends Decision {
  /** Permanent failures to report to the sender in a DSN (only when the answer is 250). */
  bounce: TargetOutcome[];
}

export function dataAnswer(outcomes: TargetOutcome[], deliveredBefore: number): DataAnswer {
  const accepted = outcomes.filter((o) => o.reply.code < 400).length + deliveredBefore;
  const failures = outcomes.filter((o) => o.reply.code >= 400);
  // A retry of a message every target already accepted: nothing was sent now, and the answer says so.
  if (outcomes.length === 0 && deliveredBefore > 0) return { ...ALREADY_DELIVERED, bounce: [] };
  if (failures.length === 0) {
    return { ...decision(reply(250, "2.0.0", accepted === 1 ? "Message forwarded" : `Message forwarded to ${accepted} recipients`), "delivered"), bounce: [] };
  }
  const lowest = (list: TargetOutcome[]) => list.reduce((a, b) => (b.reply.code < a.reply.code ? b : a));
  const temporary = failures.filter((o) => o.reply.code < 500);
  if (temporary.length > 0) return answeredAs(lowest(temporary), "deferred_by_destination");
  if (accepted === 0) return answeredAs(lowest(failures), "refused_by_destination");
  const text = `Message forwarded to ${accepted} of ${accepted + failures.length} recipients; the sender is told about the others`;
  return { ...decision(reply(250, "2.0.0", text), "partly_delivered"), bounce: failures };
}

const ALREADY_DELIVERED = decision(reply(250, "2.0.0", "Message already delivered: an identical message was forwarded earlier"), "already_delivered");

/** The sender gets one target's own reply. */
const answeredAs = (o: TargetOutcome, reason: Reason): DataAnswer => ({ reply: o.reply, reason: o.reason ?? reason, bounce: [] });
