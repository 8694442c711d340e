// manifest.json of a backup: who made it, which schema its database has, and
// each file with its size and sha256, so a restore can prove the copy whole.
import { isAbsolute, normalize } from "node:path";
import { z } from "zod";
import { DATABASE_FILE } from "../store/db.ts";
import { PG_DUMP_FILE } from "../store/pg-dump.ts";
import type { FileDigest } from "./files.ts";

export const MANIFEST_FILE = "manifest.json";

export interface Manifest {
  format: 1;
  mailferry_version: string;
  /** Where the database was: SQLite (mailferry.db in the backup) or PostgreSQL (its pg_dump, mailferry.pgdump). */
  database: "sqlite" | "postgresql";
  /** Latest migration applied to the backed-up database. */
  schema_version: string | null;
  created_at: string;
  files: FileDigest[];
}

/** The file that holds the backed-up database. */
export function databaseFileOf(manifest: Pick<Manifest, "database">): string {
  return manifest.database === "postgresql" ? PG_DUMP_FILE : DATABASE_FILE;
}

/** A path that stays inside the directory it is joined to (a crafted manifest must not write elsewhere). */
const insidePath = z.string().refine((p) => p !== "" && !isAbsolute(p) && normalize(p) === p && !p.startsWith("../") && p !== "..", "must be a relative path inside the backup");

const manifestSchema = z.object({
  format: z.literal(1),
  mailferry_version: z.string(),
  // Backups made before PostgreSQL existed say nothing: they are SQLite.
  database: z.enum(["sqlite", "postgresql"]).default("sqlite"),
  schema_version: z.string().nullable(),
  created_at: z.string(),
  files: z.array(z.object({ path: insidePath, size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});

/** The manifest, or why the text is not one. */
export function parseManifest(text: string): Manifest | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return `${MANIFEST_FILE} is not JSON (${(err as Error).message})`;
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `${MANIFEST_FILE} is not a mailferry backup manifest: ${issue.path.join(".") || "(top)"}: ${issue.message}`;
  }
  return parsed.data;
}
