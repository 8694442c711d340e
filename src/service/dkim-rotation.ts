// The second phase of a DKIM rotation: a pending key starts signing once DNS
// serves exactly its public key, so no signature is ever made that receivers
// cannot verify. Checked by the server every few minutes and on each `dns
// check` and live check of the admin UI.
import { dkimRecordValue } from "../mail/dkim-key.ts";
import { publishesDkimKey } from "../auth/record-judgement.ts";
import type { Lookup } from "../auth/records.ts";
import type { Logger } from "../log.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { activateKey, pendingKeys } from "../store/dkim-keys.ts";

/** Who switched keys, in the audit log. */
export const DNS_CHECK_ACTOR: Actor = { name: "dns-check", ip: "" };

/** Often enough that a rotation completes soon after the record is published; one TXT query per pending key. */
export const ACTIVATION_INTERVAL_MS = 600_000;

export interface Activation {
  domain: string;
  selector: string;
  /** The selectors that stopped signing (retired, still published). */
  retired: string[];
}

async function dnsServes(lookup: Lookup, name: string, value: string): Promise<boolean> {
  try {
    const answer = (await lookup(name, "TXT")) as string[][];
    return answer.some((parts) => publishesDkimKey(parts.join(""), value));
  } catch {
    // Not published yet, or DNS failed: ask again next time.
    return false;
  }
}

/** Every pending key whose record DNS serves now starts signing. */
export async function activatePublishedKeys(db: DB, lookup: Lookup, now = Date.now()): Promise<Activation[]> {
  const activations: Activation[] = [];
  for (const key of await pendingKeys(db)) {
    if (!(await dnsServes(lookup, `${key.selector}._domainkey.${key.domain}`, dkimRecordValue(key)))) continue;
    const done = await activateKey(db, key, now);
    if (!done) continue;
    await audit(db, DNS_CHECK_ACTOR, "domain.dkim.activate", key.domain, { signing: done.retired }, { signing: key.selector, reason: "DNS serves its record" }, now);
    activations.push({ domain: key.domain, selector: key.selector, retired: done.retired });
  }
  return activations;
}

/** The server's periodic check: once at start, then every `intervalMs`. */
export function startDkimActivation(deps: { db: DB; lookup: Lookup; logger: Logger; intervalMs?: number; runsHere?: () => boolean }): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    // Several nodes on one database: one of them checks (store/job-locks.ts).
    if (deps.runsHere && !deps.runsHere()) return;
    running = activatePublishedKeys(deps.db, deps.lookup).then(
      (activations) => {
        for (const a of activations) deps.logger.info("dkim.activated", { domain: a.domain, selector: a.selector, retired: a.retired, reason: "DNS serves its record" });
      },
      (err) => deps.logger.error("dkim.activation_failed", { error: err }),
    );
  };
  run();
  const timer = setInterval(run, deps.intervalMs ?? ACTIVATION_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      // The database closes after this: let a check under way finish first.
      await running;
    },
  };
}
