// File-tree fingerprints, to prove an operation that refused changed nothing.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every regular file below `dir` (relative path) with its sha256, except those `skip` names. */
export function hashTree(dir: string, skip: (path: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const path of readdirSync(dir, { recursive: true }) as string[]) {
    const full = join(dir, path);
    if (statSync(full).isFile() && !skip(path)) out[path] = createHash("sha256").update(readFileSync(full)).digest("hex");
  }
  return out;
}
