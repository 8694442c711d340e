// Polls until something a background task does is visible, within a bound.

/** The probe's first truthy value (or first element of a non-empty array), or undefined after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | T[], timeoutMs = 5000): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (Array.isArray(value) ? value.length > 0 : value) return Array.isArray(value) ? (value[0] as T) : (value as T);
    if (Date.now() > until) return undefined;
    await Bun.sleep(50);
  }
}

/** Polls `probe` until it holds; the milliseconds that took, or throws after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
  return Date.now() - started;
}
