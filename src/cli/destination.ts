import { type DestinationState, withStatus } from "../service/destinations.ts";
import { destinationJson, isoTime } from "../service/json.ts";
import type { DB } from "../store/db.ts";
import { listDestinations } from "../store/destinations.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

const PAGE = 1000;

export async function destinationCommand(ctx: CommandContext): Promise<number> {
  const [action, address, ...rest] = ctx.args;
  const needAddress = () => {
    if (!address || rest.length) throw new UsageError(`usage: mailferry destination ${action} <address>`);
    return address;
  };
  const { out } = ctx.io;
  switch (action) {
    case "add": {
      const target = needAddress();
      const { destination, sent } = await withServices(ctx, (s) => s.destinations.add(CLI_ACTOR, target));
      if (ctx.json) out(JSON.stringify({ destination: destinationJson(destination), verification_sent: sent }));
      else if (destination.status === "verified") out(`${destination.address} is confirmed (${destination.confirmed_by})`);
      else if (!sent) out(`${destination.address} is pending: a verification mail went there less than a minute ago`);
      if (sent) (ctx.json ? ctx.io.err : out)(`verification mail queued for ${destination.address}: mail is forwarded there once its owner confirms`);
      return 0;
    }
    case "list": {
      if (address) throw new UsageError("usage: mailferry destination list [--json]");
      const destinations = await withStore(ctx, (s) => allDestinations(s.db));
      if (ctx.json) out(JSON.stringify(destinations.map(destinationJson)));
      else out(destinations.length ? destinations.map(describe).join("\n") : "(no destinations)");
      return 0;
    }
    case "resend": {
      const target = needAddress();
      const destination = await withServices(ctx, (s) => s.destinations.resend(CLI_ACTOR, target));
      if (ctx.json) out(JSON.stringify(destinationJson(destination)));
      (ctx.json ? ctx.io.err : out)(`verification mail queued for ${destination.address}: mail is forwarded there once its owner confirms`);
      return 0;
    }
    case "remove": {
      const target = needAddress();
      await withServices(ctx, (s) => s.destinations.remove(CLI_ACTOR, target));
      out(`removed ${target.toLowerCase()}: mail is forwarded there again only once it is verified again`);
      return 0;
    }
    default:
      throw new UsageError(`unknown destination command: ${action ?? "(none)"}; try: add, list, resend, remove`);
  }
}

/** Every destination: the store hands them out a page at a time. */
async function allDestinations(db: DB): Promise<DestinationState[]> {
  const all: DestinationState[] = [];
  for (;;) {
    const page = await listDestinations(db, { after: all.at(-1)?.id ?? 0, limit: PAGE });
    all.push(...page.map(withStatus));
    if (page.length < PAGE) return all;
  }
}

function describe(d: DestinationState): string {
  const when = d.status === "verified" ? `since ${isoTime(d.verified_at)}` : d.last_sent_at === null ? "no link sent yet" : `link sent ${isoTime(d.last_sent_at)}`;
  return `${d.address}  ${d.status.padEnd(8)}  ${when}`;
}
