// Writes made during one event-loop turn, committed together: under load many
// sessions reach the same write at once, and one commit serves them all.

/** An item waiting for its batch; `write` settles each. */
export interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface TurnBatch<T> {
  /** Queues the item; settles once its batch is written. */
  add(item: T): Promise<void>;
  /** Writes what is queued now; resolves once every item added so far is settled. */
  flush(): Promise<void>;
}

/**
 * Hands the items added during one event-loop turn to `write` together.
 * Batches are written one after the other, so items are written in the
 * order they were added.
 */
export function turnBatch<T>(write: (batch: Pending<T>[]) => Promise<void>): TurnBatch<T> {
  let queue: Pending<T>[] = [];
  let scheduled: ReturnType<typeof setImmediate> | null = null;
  let written = Promise.resolve();

  const flush = () => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = null;
    if (queue.length > 0) {
      const batch = queue;
      queue = [];
      written = written.then(() => write(batch));
    }
    return written;
  };
  return {
    add: (item) =>
      new Promise((resolve, reject) => {
        queue.push({ item, resolve, reject });
        scheduled ??= setImmediate(flush);
      }),
    flush,
  };
}
