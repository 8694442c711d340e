// App passwords in the store (src/store/passwords.ts): the secret is random
// (160 bits) and kept only as a hash; AUTH failures are counted per client and
// per user name in one statement each, so parallel guesses cannot pass the
// limit together, while good logins are taken back and never add up.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "../../src/store/admins.ts";
import { openStore, type Store } from "../../src/store/db.ts";
import { addDomain } from "../../src/store/domains.ts";
import { AUTH_FAILURES, checkSubmissionAuth, countSubmission, createPassword } from "../../src/store/passwords.ts";

const dir = mkdtempSync(join(tmpdir(), "mailferry-passwords-"));
let store: Store;

beforeAll(async () => {
  store = await openStore(join(dir, "test.db"));
  await addDomain(store.db, "example.test");
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (username: string, password: string, client = "192.0.2.1") => checkSubmissionAuth(store.db, { username, password, client });

describe("app passwords", () => {
  test("160 random bits as hex, stored only as their sha256; an address outside the managed domains is refused", async () => {
    const { password, info } = await createPassword(store.db, "Hello@Example.test", "phone");
    expect(password).toMatch(/^[0-9a-f]{40}$/);
    expect(info).toMatchObject({ kind: "address", identity: "Hello@example.test".toLowerCase() });
    const row = await store.db.selectFrom("app_passwords").selectAll().where("id", "=", info.id).executeTakeFirstOrThrow();
    expect(row.secret_hash).toBe(sha256(password));
    expect(JSON.stringify(row)).not.toContain(password);
    await expect(createPassword(store.db, "someone@elsewhere.test", "x")).rejects.toThrow("is not a domain managed here");
    await expect(createPassword(store.db, "hello@example.test", "phone")).rejects.toThrow("has a password named phone");
  });

  test("a domain password logs in as the domain or any address of it; an address password only as its address", async () => {
    const domain = (await createPassword(store.db, "example.test", "laptop")).password;
    for (const user of ["example.test", "anyone@example.test", "x@sub.example.test"]) expect(await auth(user, domain, "192.0.2.10")).toHaveProperty("credential");
    expect(await auth("x@badexample.test", domain, "192.0.2.10")).toEqual({ error: "invalid" });
    const address = (await createPassword(store.db, "one@example.test", "one")).password;
    expect(await auth("two@example.test", address, "192.0.2.11")).toEqual({ error: "invalid" });
  });

  test("good logins never add up to a throttle", async () => {
    const { password } = await createPassword(store.db, "often@example.test", "busy phone");
    for (let i = 0; i < AUTH_FAILURES.max * 3; i++) expect(await auth("often@example.test", password, "192.0.2.20")).toHaveProperty("credential");
  });

  test("parallel wrong guesses: at most the limit are checked, the rest throttled, per client and per user name", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => auth("guessed@example.test", "wrong", "192.0.2.30")));
    expect(results.filter((r) => "error" in r && r.error === "invalid")).toHaveLength(AUTH_FAILURES.max);
    expect(results.filter((r) => "error" in r && r.error === "throttled")).toHaveLength(20 - AUTH_FAILURES.max);
    // The same user name from another client is throttled too; another user from that client as well.
    expect(await auth("guessed@example.test", "wrong", "192.0.2.31")).toEqual({ error: "throttled" });
    expect(await auth("other@example.test", "wrong", "192.0.2.30")).toEqual({ error: "throttled" });
  });

  test("the hourly count of a credential's messages starts again after an hour", async () => {
    const now = Date.now();
    expect([await countSubmission(store.db, 99, now), await countSubmission(store.db, 99, now + 1)]).toEqual([1, 2]);
    expect(await countSubmission(store.db, 99, now + 3_600_000)).toBe(1);
  });
});
