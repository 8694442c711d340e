// The DATA answer from the targets' replies: SPEC §3.10. The sending MTA is
// the retry queue, so a temporary failure of any target is answered
// temporarily (targets that accepted are remembered and skipped on retry).
import { type Reply, reply } from "../mail/reply.ts";

export interface TargetOutcome {
  target: string;
  originalRecipient: string;
  reply: Reply;
  remoteMta: string | null;
}

export interface DataAnswer {
  reply: Reply;
  /** Permanent failures to report to the sender in a DSN (only when the answer is 250). */
  bounce: TargetOutcome[];
}

export function dataAnswer(outcomes: TargetOutcome[], deliveredBefore: number): DataAnswer {
  const accepted = outcomes.filter((o) => o.reply.code < 400).length + deliveredBefore;
  const failures = outcomes.filter((o) => o.reply.code >= 400);
  if (failures.length === 0) {
    return { reply: reply(250, "2.0.0", accepted === 1 ? "Message forwarded" : `Message forwarded to ${accepted} recipients`), bounce: [] };
  }
  const lowest = (list: TargetOutcome[]) => list.reduce((a, b) => (b.reply.code < a.reply.code ? b : a));
  const temporary = failures.filter((o) => o.reply.code < 500);
  if (temporary.length > 0) return { reply: lowest(temporary).reply, bounce: [] };
  if (accepted === 0) return { reply: lowest(failures).reply, bounce: [] };
  return { reply: reply(250, "2.0.0", `Message forwarded to ${accepted} of ${accepted + failures.length} recipients; the sender is told about the others`), bounce: failures };
}
