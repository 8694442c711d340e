// Who is asking: the session cookie, the CSRF check on every state change,
// the first-run set-up gate, and the security headers of every response.
import { timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import type { DB } from "../store/db.ts";
import { adminCount, sessionFor, type WebSession } from "../store/admins.ts";
import type { Actor } from "../store/audit.ts";

export const SESSION_COOKIE = "mf_session";
/** A verification link: its signed token is its own credential, no session or CSRF token exists there. */
export const VERIFY_PATH = /^\/verify\/[^/]+$/;

export type Env = { Variables: { session: WebSession | null; ip: string } };

/** Paths for anyone on the internet: health, the MTA-STS policy, assets and destination verification (all the public HTTPS port serves). */
export const OPEN_PATHS = [/^\/healthz$/, /^\/\.well-known\/mta-sts\.txt$/, /^\/static\//, /^\/favicon\.ico$/, VERIFY_PATH];

/** Paths without a session: the open ones, set-up, login and /metrics (which checks access itself). */
const PUBLIC = [...OPEN_PATHS, /^\/setup$/, /^\/login$/, /^\/metrics$/];

export function securityHeaders(secure: boolean): MiddlewareHandler<Env> {
  return async (c, next) => {
    await next();
    c.header("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
    c.header("x-frame-options", "DENY");
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "same-origin");
    if (secure) c.header("strict-transport-security", "max-age=31536000");
  };
}

/** Who is signed in (the session cookie); pages other than the public ones need someone, and set-up until an admin exists. */
export function sessionAuth(db: DB): MiddlewareHandler<Env> {
  return async (c, next) => {
    c.set("ip", clientIp(c));
    const token = getCookie(c, SESSION_COOKIE);
    c.set("session", token ? await sessionFor(db, token) : null);
    const path = new URL(c.req.url).pathname;
    if (PUBLIC.some((p) => p.test(path)) || path.startsWith("/api/")) return next();
    if ((await adminCount(db)) === 0) return c.redirect("/setup");
    if (c.get("session")) return next();
    if (c.req.method === "GET" && !c.req.header("hx-request")) return c.redirect(`/login?next=${encodeURIComponent(path)}`);
    return c.text("Not logged in\n", 401);
  };
}

/** Every POST carries the session's CSRF token, as the `_csrf` field or the `x-csrf-token` header. */
export function csrf(): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    const path = new URL(c.req.url).pathname;
    // No session here: set-up, login and verification have their own token or credentials; the API its bearer tokens.
    if (path === "/setup" || path === "/login" || VERIFY_PATH.test(path) || path.startsWith("/api/")) return next();
    const session = c.get("session");
    const given = c.req.header("x-csrf-token") ?? (await formValue(c, "_csrf"));
    if (!session || !given || !sameToken(given, session.csrf)) return c.text("Missing or invalid CSRF token\n", 403);
    return next();
  };
}

/** Compares secrets in constant time. */
export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function formValue(c: Context, name: string): Promise<string | undefined> {
  const type = c.req.header("content-type") ?? "";
  if (!type.includes("form")) return undefined;
  const value = (await formBody(c))[name];
  return typeof value === "string" ? value : undefined;
}

/**
 * The posted form as parsed. A body that is not what its content type says
 * (a multipart body without its boundary, or with the wrong one) is the
 * client's mistake: 400, never a 500.
 */
export async function formBody(c: Pick<Context, "req">): Promise<Record<string, string | File>> {
  try {
    return await c.req.parseBody();
  } catch (err) {
    throw new HTTPException(400, { message: "The form body could not be read\n", cause: err });
  }
}

/** The peer address: no proxy headers are trusted (the UI is served directly). */
export function clientIp(c: Context): string {
  const info = (c.env as { requestIP?: (req: Request) => { address: string } | null } | undefined)?.requestIP?.(c.req.raw);
  return info?.address?.replace(/^::ffff:/, "") ?? "unknown";
}

/** A signed-in admin acts in their name; their word confirms destinations. */
export function adminActor(c: Pick<Context<Env>, "get">): Actor {
  return { name: `admin:${c.get("session")?.admin.username ?? "?"}`, ip: c.get("ip"), confirmsDestinations: true };
}
