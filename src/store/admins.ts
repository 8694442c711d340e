// Admin accounts, their sessions and login throttling. Passwords are argon2id
// (Bun.password); session tokens and recovery codes are stored only as hashes.
import { createHash, randomBytes } from "node:crypto";
import { sql } from "kysely";
import * as OTPAuth from "otpauth";
import { UserError } from "../errors.ts";
import type { DB } from "./db.ts";
import type { Admin } from "./schema.ts";

export const MIN_PASSWORD = 12;
export const SESSION_TTL_MS = 7 * 86_400_000;
export const LOGIN_FAILURES = { max: 5, windowMs: 15 * 60_000 } as const;

export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

export function adminCount(db: DB): Promise<number> {
  return db.selectFrom("admins").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow().then((r) => Number(r.n));
}

export async function createAdmin(db: DB, username: string, password: string, now = Date.now()): Promise<Admin> {
  const name = username.trim().toLowerCase();
  if (!/^[a-z0-9._@-]{1,64}$/.test(name)) throw new UserError("invalid", "the user name may use letters, digits and . _ @ - (at most 64)", "username");
  if (password.length < MIN_PASSWORD) throw new UserError("invalid", `the password must be at least ${MIN_PASSWORD} characters`, "password");
  if (password.length > 1024) throw new UserError("invalid", "the password is too long", "password");
  const password_hash = await Bun.password.hash(password, { algorithm: "argon2id" });
  const row = await db.insertInto("admins").values({ username: name, password_hash, created_at: now, updated_at: now }).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
  if (!row) throw new UserError("conflict", `an admin named ${name} already exists`, "username");
  return row;
}

export function adminById(db: DB, id: number): Promise<Admin | undefined> {
  return db.selectFrom("admins").selectAll().where("id", "=", id).executeTakeFirst();
}

export function findAdmin(db: DB, username: string): Promise<Admin | undefined> {
  return db.selectFrom("admins").selectAll().where("username", "=", username.trim().toLowerCase()).executeTakeFirst();
}

export type LoginResult = { admin: Admin } | { error: "invalid" | "throttled" | "totp_required" | "totp_invalid"; retryAfterS?: number };

/**
 * Checks a login. Attempts count per client (an IP, or an IPv6 client's /64)
 * and user name; after 5 in 15 minutes further attempts are refused until the
 * window passes. The attempt is reserved before the password is checked, so
 * parallel guesses cannot all pass the count; a successful login clears it.
 */
export async function checkLogin(db: DB, input: { username: string; password: string; code?: string; client: string }, now = Date.now()): Promise<LoginResult> {
  const key = `${input.client}|${input.username.trim().toLowerCase()}`;
  const attempt = await reserveAttempt(db, key, now);
  if (attempt.count > LOGIN_FAILURES.max) return { error: "throttled", retryAfterS: Math.ceil((attempt.window_start + LOGIN_FAILURES.windowMs - now) / 1000) };
  const admin = await findAdmin(db, input.username);
  // Verify against a dummy hash for unknown users, so timing does not reveal which names exist.
  const ok = await Bun.password.verify(input.password, admin?.password_hash ?? (await dummyHash()));
  if (!admin || !ok) return { error: "invalid" };
  if (admin.totp_enabled) {
    if (!input.code) return { error: "totp_required" };
    if (!(await checkSecondFactor(db, admin, input.code, now))) return { error: "totp_invalid" };
  }
  await db.deleteFrom("login_failures").where("key", "=", key).execute();
  return { admin };
}

/**
 * Counts one attempt in a single statement (a new window once the last one
 * passed): the count after it. Also the throttle of SMTP AUTH and the hourly
 * count of submitted messages (src/submission/), under their own key prefixes.
 */
export function reserveAttempt(db: DB, key: string, now: number, windowMs: number = LOGIN_FAILURES.windowMs): Promise<{ count: number; window_start: number }> {
  const expired = sql<boolean>`${now} - login_failures.window_start >= ${windowMs}`;
  return db
    .insertInto("login_failures")
    .values({ key, window_start: now, count: 1 })
    .onConflict((oc) =>
      oc.column("key").doUpdateSet({
        window_start: sql<number>`CASE WHEN ${expired} THEN ${now} ELSE login_failures.window_start END`,
        count: sql<number>`CASE WHEN ${expired} THEN 1 ELSE login_failures.count + 1 END`,
      }),
    )
    .returning(["count", "window_start"])
    .executeTakeFirstOrThrow();
}

/** Takes back one reserved attempt that turned out good, so only failures stay counted. */
export async function releaseAttempt(db: DB, key: string): Promise<void> {
  await db.updateTable("login_failures").set({ count: sql<number>`CASE WHEN count > 0 THEN count - 1 ELSE 0 END` }).where("key", "=", key).execute();
}

// An unknown user costs one argon2 verify like a known one, so timing does not
// reveal which names exist. Made on first use: hashing at import slowed every start.
let dummy: Promise<string> | undefined;
const dummyHash = () => (dummy ??= Bun.password.hash("not a real password, only for timing", { algorithm: "argon2id" }));

export function totpFor(username: string, secret: string): OTPAuth.TOTP {
  return new OTPAuth.TOTP({ issuer: "mailferry", label: username, algorithm: "SHA1", digits: 6, period: 30, secret: OTPAuth.Secret.fromBase32(secret) });
}

const TOTP_PERIOD_S = 30;

/** A TOTP code (±1 step) not used before, or an unused recovery code, which is then spent. */
async function checkSecondFactor(db: DB, admin: Admin, code: string, now: number): Promise<boolean> {
  const clean = code.replace(/\s+/g, "");
  if (/^\d{6}$/.test(clean) && admin.totp_secret) {
    const delta = totpFor(admin.username, admin.totp_secret).validate({ token: clean, timestamp: now, window: 1 });
    if (delta !== null) return spendTotpStep(db, admin.id, Math.floor(now / 1000 / TOTP_PERIOD_S) + delta);
  }
  return spendRecoveryCode(db, admin.id, sha256(clean.toLowerCase()));
}

/**
 * Removes the code from the admin's list if it is there. A compare-and-set on the
 * list as read, so two logins racing with one code cannot both spend it; a lost
 * race reads again (another code may have been spent meanwhile).
 */
async function spendRecoveryCode(db: DB, adminId: number, hash: string): Promise<boolean> {
  for (;;) {
    const row = await db.selectFrom("admins").select("recovery_codes").where("id", "=", adminId).executeTakeFirst();
    const codes = row ? (JSON.parse(row.recovery_codes) as string[]) : [];
    if (!row || !codes.includes(hash)) return false;
    const spent = await db
      .updateTable("admins")
      .set({ recovery_codes: JSON.stringify(codes.filter((c) => c !== hash)), updated_at: Date.now() })
      .where("id", "=", adminId)
      .where("recovery_codes", "=", row.recovery_codes)
      .executeTakeFirst();
    if (spent.numUpdatedRows === 1n) return true;
  }
}

/**
 * A TOTP code is good once (RFC 6238 §5.2): the time step it belongs to must
 * be later than the last one used, checked and recorded in one statement.
 */
async function spendTotpStep(db: DB, adminId: number, step: number): Promise<boolean> {
  const spent = await db
    .updateTable("admins")
    .set({ totp_last_step: step })
    .where("id", "=", adminId)
    .where((eb) => eb.or([eb("totp_last_step", "is", null), eb("totp_last_step", "<", step)]))
    .executeTakeFirst();
  return spent.numUpdatedRows > 0n;
}

/** Step 1 of turning TOTP on: a new secret (not yet enforced). */
export async function startTotp(db: DB, adminId: number): Promise<string> {
  const secret = new OTPAuth.Secret({ size: 20 }).base32;
  await db.updateTable("admins").set({ totp_secret: secret, totp_enabled: 0, totp_last_step: null, updated_at: Date.now() }).where("id", "=", adminId).execute();
  return secret;
}

/** Step 2: a valid code proves the authenticator works; returns the recovery codes (shown once). */
export async function confirmTotp(db: DB, admin: Admin, code: string, now = Date.now()): Promise<string[]> {
  const delta = admin.totp_secret ? totpFor(admin.username, admin.totp_secret).validate({ token: code.replace(/\s+/g, ""), timestamp: now, window: 1 }) : null;
  if (delta === null) throw new UserError("invalid", "that code is not valid for the secret shown; check the authenticator's clock", "code");
  const recovery = Array.from({ length: 8 }, () => randomBytes(5).toString("hex"));
  // The confirming code is spent too: it cannot sign in afterwards.
  const totp_last_step = Math.floor(now / 1000 / TOTP_PERIOD_S) + delta;
  await db.updateTable("admins").set({ totp_enabled: 1, totp_last_step, recovery_codes: JSON.stringify(recovery.map(sha256)), updated_at: now }).where("id", "=", admin.id).execute();
  return recovery;
}

export async function disableTotp(db: DB, adminId: number): Promise<void> {
  await db.updateTable("admins").set({ totp_enabled: 0, totp_secret: null, totp_last_step: null, recovery_codes: "[]", updated_at: Date.now() }).where("id", "=", adminId).execute();
}

export interface WebSession {
  admin: Admin;
  sessionId: string;
  csrf: string;
}

/** A new session; returns the cookie token (only its hash is stored). */
export async function createSession(db: DB, adminId: number, ip: string, userAgent: string, now = Date.now()): Promise<{ token: string; csrf: string }> {
  const token = randomBytes(32).toString("base64url");
  const csrf = randomBytes(24).toString("base64url");
  await db.insertInto("web_sessions").values({ id: sha256(token), admin_id: adminId, csrf, ip, user_agent: userAgent.slice(0, 200), created_at: now, last_seen: now, expires_at: now + SESSION_TTL_MS }).execute();
  return { token, csrf };
}

export async function sessionFor(db: DB, token: string, now = Date.now()): Promise<WebSession | null> {
  const id = sha256(token);
  const row = await db.selectFrom("web_sessions").selectAll().where("id", "=", id).where("expires_at", ">", now).executeTakeFirst();
  if (!row) return null;
  const admin = await db.selectFrom("admins").selectAll().where("id", "=", row.admin_id).executeTakeFirst();
  if (!admin) return null;
  if (now - row.last_seen > 60_000) await db.updateTable("web_sessions").set({ last_seen: now }).where("id", "=", id).execute();
  return { admin, sessionId: id, csrf: row.csrf };
}

export function listSessions(db: DB, adminId: number) {
  return db.selectFrom("web_sessions").select(["id", "ip", "user_agent", "created_at", "last_seen"]).where("admin_id", "=", adminId).where("expires_at", ">", Date.now()).orderBy("last_seen", "desc").execute();
}

export async function revokeSession(db: DB, adminId: number, sessionId: string): Promise<void> {
  await db.deleteFrom("web_sessions").where("id", "=", sessionId).where("admin_id", "=", adminId).execute();
}
