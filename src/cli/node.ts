import { isoTime, nodeJson } from "../service/json.ts";
import { listNodes, type NodeState } from "../store/nodes.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function nodeCommand(ctx: CommandContext): Promise<number> {
  const [action, ...args] = ctx.args;
  const { out } = ctx.io;
  switch (action) {
    case "list": {
      if (args.length) throw new UsageError("usage: mailferry node list [--json]");
      const nodes = await withStore(ctx, (s) => listNodes(s.db, Date.now()));
      if (ctx.json) out(JSON.stringify(nodes.map(nodeJson)));
      else out(nodes.length ? nodes.map(describe).join("\n") : "(no node has run on this database yet)");
      return 0;
    }
    case "forget": {
      if (args.length !== 1) throw new UsageError("usage: mailferry node forget <hostname>");
      await withServices(ctx, (s) => s.nodes.forget(CLI_ACTOR, args[0]!));
      out(`forgot node ${args[0]!.trim().toLowerCase()}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown node command: ${action ?? "(none)"}; try: list, forget`);
  }
}

function describe(n: NodeState): string {
  return `${n.hostname}  ${n.alive ? "alive" : "not seen"}  last seen ${isoTime(n.last_seen)}  started ${isoTime(n.started_at)}`;
}
