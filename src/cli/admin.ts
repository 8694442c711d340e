import { adminUrl } from "../config/index.ts";
import { UserError } from "../errors.ts";
import { adminCount } from "../store/admins.ts";
import { readSetupToken, SETUP_TOKEN_FILE, setupUrl } from "../store/setup-token.ts";
import { CLI_ACTOR, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

const USAGE = "usage: printf '%s\\n' 'a long password' | mailferry admin create <name>\n       mailferry admin setup-url";

/**
 * `mailferry admin create <name>`: the password is read from standard input (first line).
 * `mailferry admin setup-url`: the one-time set-up URL the server made while no admin exists.
 */
export async function adminCommand(ctx: CommandContext, readStdin: () => Promise<string>): Promise<number> {
  const [action, name, ...rest] = ctx.args;
  if (action === "setup-url" && !name) return printSetupUrl(ctx);
  if (action !== "create" || !name || rest.length) throw new UsageError(USAGE);
  const password = (await readStdin()).split(/\r?\n/)[0] ?? "";
  const admin = await withServices(ctx, (s) => s.accounts.create(name, password, () => CLI_ACTOR));
  ctx.io.out(`created admin ${admin.username}; log in at the admin URL`);
  return 0;
}

async function printSetupUrl(ctx: CommandContext): Promise<number> {
  const { admins, config } = await withStore(ctx, async (s, config) => ({ admins: await adminCount(s.db), config }));
  if (admins > 0) throw new UserError("conflict", `set-up is done: an admin exists; log in at ${adminUrl(config)}`);
  const token = readSetupToken(config.dataDir);
  if (!token) {
    throw new UserError("not_found", `no set-up token in ${config.dataDir} yet: start the server once (it writes ${SETUP_TOKEN_FILE} there), or create the admin with \`mailferry admin create <name>\``);
  }
  ctx.io.out(setupUrl(adminUrl(config), token));
  return 0;
}
