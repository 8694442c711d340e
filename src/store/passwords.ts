// App passwords for authenticated submission (docs/send-as.md): generated
// here, shown once, stored as a sha256 hash. A slow hash (argon2) protects
// passwords people choose; these are 160 random bits, which no offline guessing
// reaches, so sha256 is as safe and lets AUTH find the row by an indexed hash
// instead of running argon2 against every password of a user on each attempt
// (which would also hand a guesser a cheap way to burn our CPU).
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.ts";
import { parseMailbox } from "../mail/address.ts";
import { normalizeDomain } from "../mail/domain.ts";
import { releaseAttempt, reserveAttempt, sha256 } from "./admins.ts";
import type { DB } from "./db.ts";
import type { AppPassword, AppPasswordKind } from "./schema.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
/** 20 random bytes: 160 bits, above the 128 the issue asks for; as hex it never starts with "-" (a shell option) nor mixes up O and 0. */
const SECRET_BYTES = 20;
/** Failed AUTH: at most 5 in 15 minutes per client and per user name, as the admin login (store/admins.ts). */
export const AUTH_FAILURES = { max: 5, windowMs: 15 * 60_000 } as const;
const HOUR_MS = 3_600_000;

export type PasswordInfo = Omit<AppPassword, "secret_hash">;
const INFO_COLUMNS = ["id", "name", "kind", "identity", "created_at", "last_used_at", "revoked_at"] as const;

/** An address (may send only as itself) or a domain (any address of it), of a managed domain or one of its subdomains. */
async function parseIdentity(db: DB, input: string): Promise<{ kind: AppPasswordKind; identity: string; domain: string }> {
  const mailbox = input.includes("@") ? parseMailbox(input.trim()) : null;
  const domain = mailbox ? mailbox.domain.toLowerCase() : normalizeDomain(input);
  if ((input.includes("@") && (!mailbox || mailbox.isLiteral)) || !domain) throw new UserError("invalid", `"${input}" is neither an email address nor a domain name`, "send_as");
  if (!(await managedAtOrAbove(db, domain))) throw new UserError("invalid", `${domain} is not a domain managed here (add it first: mailferry domain add)`, "send_as");
  return mailbox ? { kind: "address", identity: mailbox.address.toLowerCase(), domain } : { kind: "domain", identity: domain, domain };
}

async function managedAtOrAbove(db: DB, domain: string): Promise<boolean> {
  const labels = domain.split(".");
  const names = labels.slice(0, -1).map((_, i) => labels.slice(i).join("."));
  return (await db.selectFrom("domains").select("id").where("name", "in", names).executeTakeFirst()) !== undefined;
}

export async function createPassword(db: DB, identityInput: string, name: string, now = Date.now()): Promise<{ password: string; info: PasswordInfo }> {
  if (!NAME.test(name)) throw new UserError("invalid", "a password name is 1–64 letters, digits, spaces, dots, dashes or underscores", "name");
  const { kind, identity } = await parseIdentity(db, identityInput);
  const password = randomBytes(SECRET_BYTES).toString("hex");
  const info = await db
    .insertInto("app_passwords")
    .values({ name, kind, identity, secret_hash: sha256(password), created_at: now })
    .onConflict((oc) => oc.doNothing())
    .returning(INFO_COLUMNS)
    .executeTakeFirst();
  if (!info) throw new UserError("conflict", `${identity} has a password named ${name} (revoke it first)`, "name");
  return { password, info };
}

export function listPasswords(db: DB): Promise<PasswordInfo[]> {
  return db.selectFrom("app_passwords").select(INFO_COLUMNS).orderBy("identity").orderBy("id").execute();
}

export async function revokePassword(db: DB, id: number, now = Date.now()): Promise<PasswordInfo> {
  const row = await db.updateTable("app_passwords").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).returning(INFO_COLUMNS).executeTakeFirst();
  if (!row) throw new UserError("not_found", `no active app password with id ${id}`, "id");
  return row;
}

export type AuthResult = { credential: PasswordInfo } | { error: "invalid" | "throttled" };

/**
 * Checks an SMTP AUTH. Attempts count per client (an IP, or an IPv6 client's
 * /64) and per user name, each reserved before the password is checked so
 * parallel guesses cannot all pass the count (store/admins.ts); a good one is
 * taken back. The user name is the address (for a domain password any address
 * of the domain or its subdomains, or the domain itself).
 */
export async function checkSubmissionAuth(db: DB, input: { username: string; password: string; client: string }, now = Date.now()): Promise<AuthResult> {
  const username = input.username.trim().toLowerCase();
  const keys = [`submission-client|${input.client}`, `submission-user|${username}`];
  const counts = await Promise.all(keys.map((key) => reserveAttempt(db, key, now, AUTH_FAILURES.windowMs)));
  if (counts.some((c) => c.count > AUTH_FAILURES.max)) return { error: "throttled" };
  const row = await db.selectFrom("app_passwords").select(INFO_COLUMNS).where("secret_hash", "=", sha256(input.password)).where("revoked_at", "is", null).executeTakeFirst();
  if (!row || !userMatches(row, username)) return { error: "invalid" };
  for (const key of keys) await releaseAttempt(db, key);
  if (row.last_used_at === null || now - row.last_used_at > 60_000) await db.updateTable("app_passwords").set({ last_used_at: now }).where("id", "=", row.id).execute();
  return { credential: row };
}

function userMatches(credential: Pick<PasswordInfo, "kind" | "identity">, username: string): boolean {
  if (credential.kind === "address") return username === credential.identity;
  return username === credential.identity || username.endsWith(`@${credential.identity}`) || username.endsWith(`.${credential.identity}`);
}

/** Counts one message sent with a credential in the current hour: the count after it (atomic, see reserveAttempt). */
export async function countSubmission(db: DB, credentialId: number, now = Date.now()): Promise<number> {
  return (await reserveAttempt(db, `submission-sent|${credentialId}`, now, HOUR_MS)).count;
}

/** Whether the credential is still active (a revoked one ends what its session may still send). */
export async function passwordActive(db: DB, id: number): Promise<boolean> {
  return (await db.selectFrom("app_passwords").select("id").where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst()) !== undefined;
}
