// The real authentication worker, except that a message containing
// CRASH-THIS-WORKER throws outside any job: the worker dies the way a bug
// in a library would kill it (tests of src/auth/workers.ts).
import "../../src/auth/worker.ts";

declare const self: Worker;
self.addEventListener("message", (event: MessageEvent) => {
  if (event.data.kind === "authenticate" && Buffer.from(event.data.message.head).includes("CRASH-THIS-WORKER")) throw new Error("crashed on purpose");
});
