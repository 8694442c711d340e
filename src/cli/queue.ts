// `mailferry queue`: the outbound queue (docs/delivery-and-authentication.md,
// "Outbound queue"). Retry and delete change the table; the running server
// sends a message made due within its poll (a minute).
import { queueItemJson, type QueueItem } from "../service/queue.ts";
import { isoTime } from "../service/json.ts";
import { CLI_ACTOR, withServices } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function queueCommand(ctx: CommandContext): Promise<number> {
  const [action, ...args] = ctx.args;
  const { out } = ctx.io;
  switch (action) {
    case "list": {
      if (args.length) throw new UsageError("usage: mailferry queue list [--json]");
      const items = await withServices(ctx, (s) => s.queue.list());
      if (ctx.json) out(JSON.stringify(items.map(queueItemJson)));
      else out(items.length ? items.map(describe).join("\n") : "(the outbound queue is empty)");
      return 0;
    }
    case "retry": {
      const id = queueId(args, "retry");
      await withServices(ctx, (s) => s.queue.retry(CLI_ACTOR, id));
      out(`message ${id} is due now; the running server sends it within a minute`);
      return 0;
    }
    case "delete": {
      const id = queueId(args, "delete");
      await withServices(ctx, (s) => s.queue.remove(CLI_ACTOR, id));
      out(`deleted message ${id} from the outbound queue (unsent, no DSN)`);
      return 0;
    }
    default:
      throw new UsageError(`unknown queue command: ${action ?? "(none)"}; try: list, retry, delete`);
  }
}

function queueId(args: string[], action: string): number {
  const id = Number(args[0]);
  if (args.length !== 1 || !Number.isSafeInteger(id) || id <= 0) throw new UsageError(`usage: mailferry queue ${action} <id> (the number queue list shows)`);
  return id;
}

function describe(e: QueueItem): string {
  const pending = e.recipients.filter((r) => r.status === "pending").map((r) => r.address);
  const from = e.mail_from === "" ? "<>" : e.mail_from;
  return `${e.id}  from ${from}  to ${pending.join(", ")}  queued ${isoTime(e.created_at)}  attempts ${e.attempts}  next ${isoTime(e.next_attempt)}${e.last_error ? `  last: ${e.last_error}` : ""}`;
}
