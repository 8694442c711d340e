// `mailferry backup <dir>` and `mailferry restore <dir>`.
import { join, resolve } from "node:path";
import { createBackup } from "../backup/create.ts";
import { MANIFEST_FILE } from "../backup/manifest.ts";
import { restoreBackup } from "../backup/restore.ts";
import { PG_DUMP_FILE } from "../store/pg-dump.ts";
import { withoutPassword } from "../store/postgres.ts";
import { type CommandContext, UsageError } from "./command.ts";

function directoryArgument(ctx: CommandContext, command: string): string {
  if (ctx.args.length !== 1) throw new UsageError(`usage: mailferry ${command} <dir>`);
  return resolve(ctx.io.cwd, ctx.args[0]!);
}

export async function backupCommand(ctx: CommandContext): Promise<number> {
  const target = directoryArgument(ctx, "backup");
  const { config } = ctx.config();
  const databaseUrl = config.database.url;
  const { manifest, skipped } = await createBackup({ dataDir: config.dataDir, databaseUrl }, target);
  if (databaseUrl) ctx.io.out(`dumped the PostgreSQL database ${withoutPassword(databaseUrl)} with pg_dump -Fc into ${join(target, PG_DUMP_FILE)}`);
  for (const file of manifest.files) ctx.io.out(`wrote ${join(target, file.path)}  ${file.size} bytes`);
  ctx.io.out(`wrote ${join(target, MANIFEST_FILE)}`);
  for (const path of skipped) ctx.io.err(`skipped ${join(config.dataDir, path)}: not a regular file`);
  ctx.io.out(`backup of ${config.dataDir} done: ${manifest.files.length} files, schema ${manifest.schema_version ?? "(empty)"}, mailferry ${manifest.mailferry_version}`);
  return 0;
}

export async function restoreCommand(ctx: CommandContext): Promise<number> {
  const source = directoryArgument(ctx, "restore");
  const { config } = ctx.config();
  const databaseUrl = config.database.url;
  const { manifest, movedAside } = await restoreBackup({ dataDir: config.dataDir, databaseUrl }, source);
  ctx.io.out(`checked ${source}: ${manifest.files.length} files match ${MANIFEST_FILE}, database integrity ok, schema ${manifest.schema_version ?? "(empty)"} (mailferry ${manifest.mailferry_version}, ${manifest.created_at})`);
  if (movedAside) ctx.io.out(`moved the previous contents of ${config.dataDir} to ${movedAside}`);
  if (databaseUrl) ctx.io.out(`restored the PostgreSQL database ${withoutPassword(databaseUrl)} from ${PG_DUMP_FILE} with pg_restore`);
  const files = manifest.files.filter((f) => f.path !== PG_DUMP_FILE).length;
  ctx.io.out(`restored ${files} files into ${config.dataDir}; start mailferry (an older database is migrated on start)`);
  return 0;
}
