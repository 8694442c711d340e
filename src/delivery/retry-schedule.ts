// When the outbound queue tries a message again (docs/delivery-and-authentication.md,
// "Outbound queue"): quickly at first, for a destination that greylists or
// restarts, then every 4 hours until 5 days after it was queued (the give-up
// time RFC 5321 §4.5.4.1 suggests: at least 4-5 days).

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Waits after the 1st, 2nd, ... failed attempt; the last one repeats. */
export const RETRY_DELAYS_MS = [1 * MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, 1 * HOUR, 2 * HOUR, 4 * HOUR] as const;
export const GIVE_UP_AFTER_MS = 5 * 24 * HOUR;
/** A message with a submitter still undelivered this long after it was queued gets one delay notice. */
export const DELAY_NOTICE_AFTER_MS = 4 * HOUR;

export type RetryPlan = { retryAt: number } | { giveUp: true };

/** After `failedAttempts` temporary failures (1 or more) of a message queued at `queuedAt`: the next try, or give up. */
export function retryPlan(failedAttempts: number, queuedAt: number, now: number): RetryPlan {
  const wait = RETRY_DELAYS_MS[Math.min(Math.max(failedAttempts, 1), RETRY_DELAYS_MS.length) - 1]!;
  const giveUpAt = queuedAt + GIVE_UP_AFTER_MS;
  if (now >= giveUpAt) return { giveUp: true };
  // The last try falls on the give-up time rather than past it.
  return { retryAt: Math.min(now + wait, giveUpAt) };
}
