// The data directory is private to its owner: made 0700, and what is already
// there loses group and other access, as does the database with -wal and -shm.
import { afterEach, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { preparePrivateDataDir } from "../src/store/data-dir.ts";
import { openStore } from "../src/store/db.ts";

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-data-dir-"));
  made.push(dir);
  return dir;
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

test("a missing data dir is made 0700, whatever the umask allows", () => {
  const dir = join(scratch(), "a", "data");
  const umask = process.umask(0o022);
  try {
    preparePrivateDataDir(dir);
  } finally {
    process.umask(umask);
  }
  expect(mode(dir)).toBe("700");
});

test("an existing one (a checkout's ./data, an older install) loses group and other access, all the way down; symlinked files are left alone", () => {
  const root = scratch();
  const dir = join(root, "data");
  mkdirSync(join(dir, "tls"), { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(join(dir, "tls"), 0o755);
  writeFileSync(join(dir, ".gitkeep"), "", { mode: 0o644 });
  writeFileSync(join(dir, "tls", "selfsigned.key"), "key", { mode: 0o644 });
  writeFileSync(join(dir, "run.sh"), "", { mode: 0o755 });
  const outside = join(root, "fullchain.pem");
  writeFileSync(outside, "cert", { mode: 0o644 });
  symlinkSync(outside, join(dir, "tls", "cert.pem"));

  preparePrivateDataDir(dir);

  expect([dir, join(dir, "tls")].map(mode)).toEqual(["700", "700"]);
  expect([".gitkeep", "tls/selfsigned.key", "run.sh"].map((f) => mode(join(dir, f)))).toEqual(["600", "600", "700"]);
  expect(mode(outside)).toBe("644");
});

test("the database (DKIM private keys) and its -wal and -shm are 0600, new or made readable before", async () => {
  const dir = scratch();
  const path = join(dir, "mailferry.db");
  const umask = process.umask(0o022);
  try {
    const store = await openStore(path);
    // While open (the last connection to close removes -wal and -shm).
    expect(["", "-wal", "-shm"].map((suffix) => mode(path + suffix))).toEqual(["600", "600", "600"]);
    await store.close();
    chmodSync(path, 0o644);
    const again = await openStore(path);
    expect(mode(path)).toBe("600");
    await again.close();
  } finally {
    process.umask(umask);
  }
});
