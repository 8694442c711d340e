// API tokens: random, shown once, stored as a sha256 hash with a scope.
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.ts";
import { sha256 } from "./admins.ts";
import type { DB } from "./db.ts";
import type { ApiToken, TokenScope } from "./schema.ts";

export const TOKEN_SCOPES: readonly TokenScope[] = ["read", "write", "admin"];
/** What each scope may do: read ⊂ write ⊂ admin. */
export const SCOPE_RANK: Record<TokenScope, number> = { read: 0, write: 1, admin: 2 };
const TOKEN_PREFIX = "mf_";
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export type TokenInfo = Omit<ApiToken, "token_hash">;

export async function createToken(db: DB, name: string, scope: string, now = Date.now()): Promise<{ token: string; info: TokenInfo }> {
  if (!NAME.test(name)) throw new UserError("invalid", "a token name is 1–64 letters, digits, dots, dashes or underscores", "name");
  if (!TOKEN_SCOPES.includes(scope as TokenScope)) throw new UserError("invalid", `scope must be one of ${TOKEN_SCOPES.join(", ")}`, "scope");
  const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const row = await db
    .insertInto("api_tokens")
    .values({ name, scope: scope as TokenScope, token_hash: sha256(token), created_at: now })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new UserError("conflict", `a token named ${name} exists (revoke it first)`, "name");
  const { token_hash: _hash, ...info } = row;
  return { token, info };
}

export function listTokens(db: DB): Promise<TokenInfo[]> {
  return db.selectFrom("api_tokens").select(["id", "name", "scope", "created_at", "last_used_at", "revoked_at"]).orderBy("id").execute();
}

/** Revokes the active token with this name. */
export async function revokeToken(db: DB, name: string, now = Date.now()): Promise<TokenInfo> {
  const row = await db
    .updateTable("api_tokens")
    .set({ revoked_at: now })
    .where("name", "=", name)
    .where("revoked_at", "is", null)
    .returning(["id", "name", "scope", "created_at", "last_used_at", "revoked_at"])
    .executeTakeFirst();
  if (!row) throw new UserError("not_found", `no active token named ${name}`, "name");
  return row;
}

/** The active token a bearer string belongs to; notes its use (at most once a minute, to spare writes). */
export async function tokenFor(db: DB, bearer: string, now = Date.now()): Promise<TokenInfo | null> {
  if (!bearer.startsWith(TOKEN_PREFIX)) return null;
  const row = await db.selectFrom("api_tokens").selectAll().where("token_hash", "=", sha256(bearer)).where("revoked_at", "is", null).executeTakeFirst();
  if (!row) return null;
  if (row.last_used_at === null || now - row.last_used_at > 60_000) await db.updateTable("api_tokens").set({ last_used_at: now }).where("id", "=", row.id).execute();
  const { token_hash: _hash, ...info } = row;
  return info;
}
