import { configurationReference } from "../config/reference.ts";
import { type CommandContext, UsageError } from "./command.ts";

/** `config reference`: the markdown of docs/configuration.md, which `npm run docs` writes from this output. */
export function configReference(ctx: CommandContext): number {
  if (ctx.args.length !== 1) throw new UsageError("usage: mailferry config reference");
  ctx.io.out(configurationReference().trimEnd());
  return 0;
}
