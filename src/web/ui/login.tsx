/** @jsxImportSource hono/jsx */
// First run, login and logout. Set-up exists only while there is no admin,
// and only with the token printed at start.
import { type Context, Hono } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { adminCount, checkLogin, createSession, revokeSession } from "../../store/admins.ts";
import { LoginPage, SetupLocked, SetupPage } from "../../../views/auth.tsx";
import { senderKey } from "../../policy/identity.ts";
import { type Env, SESSION_COOKIE } from "../session.ts";
import { fieldError, form, type UiDeps } from "./common.ts";

const LOGIN_MESSAGES = {
  invalid: () => "Wrong user name or password.",
  throttled: (retryAfterS = 900) => `Too many failed attempts; try again in ${Math.ceil(retryAfterS / 60)} minutes.`,
  totp_required: () => "Enter the code from your authenticator app.",
  totp_invalid: () => "That code is not valid.",
};

export function loginRoutes(deps: UiDeps): Hono<Env> {
  const { db } = deps;
  const routes = new Hono<Env>();
  const setupToken = async () => ((await adminCount(db)) === 0 ? deps.setupToken() : null);

  /** Opens a session for the admin and goes on to `next` (a local path only). */
  async function signIn(c: Context<Env>, adminId: number, next: string) {
    const { token } = await createSession(db, adminId, c.get("ip"), c.req.header("user-agent") ?? "");
    setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: "Strict", secure: deps.secureCookies, path: "/", maxAge: 7 * 86_400 });
    return c.redirect(localPath(next));
  }

  routes.get("/setup", async (c) => {
    const token = await setupToken();
    if (!token || c.req.query("token") !== token) return c.html(<SetupLocked />, token ? 403 : 404);
    return c.html(<SetupPage token={token} />);
  });
  routes.post("/setup", async (c) => {
    const f = await form(c);
    const token = await setupToken();
    if (!token || f.token !== token) return c.html(<SetupLocked />, 403);
    if (f.password !== f.password2) return c.html(<SetupPage token={token} username={f.username} errors={{ password2: "The passwords differ" }} />, 422);
    try {
      const admin = await deps.services.accounts.create(f.username ?? "", f.password ?? "", (made) => ({ name: `admin:${made.username}`, ip: c.get("ip") }));
      deps.logger.info("admin.created", { username: admin.username, via: "setup" });
      return signIn(c, admin.id, "/");
    } catch (err) {
      return c.html(<SetupPage token={token} username={f.username} errors={fieldError(err)} />, 422);
    }
  });

  routes.get("/login", (c) => (c.get("session") ? c.redirect("/") : c.html(<LoginPage />)));
  routes.post("/login", async (c) => {
    const f = await form(c);
    const result = await checkLogin(db, { username: f.username ?? "", password: f.password ?? "", code: f.code || undefined, client: loginClient(c.get("ip")) });
    if ("admin" in result) {
      await deps.services.accounts.recordLogin(result.admin, c.get("ip"));
      return signIn(c, result.admin.id, c.req.query("next") ?? "/");
    }
    const status = result.error === "throttled" ? 429 : result.error === "totp_required" ? 200 : 401;
    return c.html(<LoginPage error={LOGIN_MESSAGES[result.error](result.retryAfterS)} username={f.username} askCode={result.error.startsWith("totp")} />, status);
  });
  routes.post("/logout", async (c) => {
    const session = c.get("session")!;
    await revokeSession(db, session.admin.id, session.sessionId);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/login");
  });
  return routes;
}

/** Whom login attempts count against: the IP, or an IPv6 client's /64 (one customer usually holds a whole /64). */
export const loginClient = (ip: string): string => senderKey(ip, null);

/**
 * Where to go after signing in: a path of this site, else "/". Browsers read
 * `/\evil.example` as `//evil.example`, another site, so the path is judged as
 * a browser resolves it (the WHATWG URL parser), not by its first characters.
 */
export function localPath(next: string): string {
  const base = "http://mailferry.invalid";
  try {
    const url = new URL(next, base);
    return url.origin === base && next.startsWith("/") ? `${url.pathname}${url.search}${url.hash}` : "/";
  } catch {
    return "/";
  }
}
