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
