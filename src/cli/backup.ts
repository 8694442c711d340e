// `mailferry backup <dir>` and `mailferry restore <dir>`.
import { join, resolve } from "node:path";
import { createBackup } from "../backup/create.ts";
import { MANIFEST_FILE } from "../backup/manifest.ts";
import { restoreBackup } from "../backup/restore.ts";
import { type CommandContext, UsageError } from "./command.ts";

function directoryArgument(ctx: CommandContext, command: string): string {
  if (ctx.args.length !== 1) throw new UsageError(`usage: mailferry ${command} <dir>`);
  return resolve(ctx.io.cwd, ctx.args[0]!);
}

export async function backupCommand(ctx: CommandContext): Promise<number> {
  const target = directoryArgument(ctx, "backup");
  const { config } = ctx.config();
  const { manifest, skipped } = await createBackup(config.dataDir, target);
  for (const file of manifest.files) ctx.io.out(`wrote ${join(target, file.path)}  ${file.size} bytes`);
  ctx.io.out(`wrote ${join(target, MANIFEST_FILE)}`);
  for (const path of skipped) ctx.io.err(`skipped ${join(config.dataDir, path)}: not a regular file`);
  ctx.io.out(`backup of ${config.dataDir} done: ${manifest.files.length} files, schema ${manifest.schema_version ?? "(empty)"}, mailferry ${manifest.mailferry_version}`);
  return 0;
}

export async function restoreCommand(ctx: CommandContext): Promise<number> {
  const source = directoryArgument(ctx, "restore");
  const { config } = ctx.config();
  const { manifest, movedAside } = await restoreBackup(config.dataDir, source);
  ctx.io.out(`checked ${source}: ${manifest.files.length} files match ${MANIFEST_FILE}, database integrity ok, schema ${manifest.schema_version ?? "(empty)"} (mailferry ${manifest.mailferry_version}, ${manifest.created_at})`);
  if (movedAside) ctx.io.out(`moved the previous contents of ${config.dataDir} to ${movedAside}`);
  ctx.io.out(`restored ${manifest.files.length} files into ${config.dataDir}; start mailferry (an older database is migrated on start)`);
  return 0;
}
