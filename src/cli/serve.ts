import { startAppliance } from "../app.ts";
import { createLogger } from "../log.ts";
import { type CommandContext, UsageError } from "./command.ts";

/** Runs until SIGTERM/SIGINT, then shuts down gracefully (a second signal forces exit). */
export async function serve(ctx: CommandContext): Promise<number> {
  if (ctx.args.length) throw new UsageError(`serve takes no arguments, got: ${ctx.args.join(" ")}`);
  const { config } = ctx.config();
  const logger = createLogger(config.log);
  const appliance = await startAppliance(config, logger, ctx.configInput);
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        logger.warn("mailferry.forced_exit", { signal });
        process.exit(1);
      }
      signalled = true;
      logger.info("mailferry.signal", { signal });
      appliance.stop().then(
        () => resolve(0),
        (err) => {
          logger.error("mailferry.stop_failed", { error: err });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
