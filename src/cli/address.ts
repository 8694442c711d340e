import { waitingJson } from "../service/json.ts";
import { CLI_ACTOR, reportWaiting, withServices } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

const USAGE = "usage: mailferry address create <domain> <target...> [--name N] [--subdomain S] [--random-subdomain | --no-random-subdomain] [--description TEXT]";

/** `address create`: an exact alias, optionally on a random or a named subdomain (as POST /api/v1/addresses). */
export async function addressCommand(ctx: CommandContext): Promise<number> {
  const [action, domain, ...targets] = ctx.args;
  if (action !== "create" || !domain || !targets.length) throw new UsageError(USAGE);
  const created = await withServices(ctx, (s) =>
    s.addresses.create(CLI_ACTOR, {
      domain,
      targets,
      name: ctx.options.name,
      subdomain: ctx.options.subdomain,
      random_subdomain: randomSubdomain(ctx),
      description: ctx.options.description,
    }),
  );
  ctx.io.out(ctx.json ? JSON.stringify({ address: created.address, alias: created.alias, ...waitingJson(created.waiting) }) : created.address);
  reportWaiting(ctx, created.waiting);
  return 0;
}

/** Either switch, or neither: the domain's setting decides. */
function randomSubdomain(ctx: CommandContext): boolean | undefined {
  const on = ctx.flags.has("random-subdomain");
  const off = ctx.flags.has("no-random-subdomain");
  if (on && off) throw new UsageError("give --random-subdomain or --no-random-subdomain, not both");
  return on ? true : off ? false : undefined;
}
