import { createAdmin } from "../store/admins.ts";
import { audit } from "../store/audit.ts";
import { CLI_ACTOR, withStore } from "./context.ts";
import type { CommandContext } from "./index.ts";
import { UsageError } from "./index.ts";

/** `mailferry admin create <name>`: the password is read from standard input (first line). */
export async function adminCommand(ctx: CommandContext, readStdin: () => Promise<string>): Promise<number> {
  const [action, name, ...rest] = ctx.args;
  if (action !== "create" || !name || rest.length) throw new UsageError("usage: printf '%s\\n' 'a long password' | mailferry admin create <name>");
  const password = (await readStdin()).split(/\r?\n/)[0] ?? "";
  const admin = await withStore(ctx, async (s) => {
    const created = await createAdmin(s.db, name, password);
    await audit(s.db, CLI_ACTOR, "admin.create", created.username);
    return created;
  });
  ctx.io.out(`created admin ${admin.username}; log in at the admin URL`);
  return 0;
}
