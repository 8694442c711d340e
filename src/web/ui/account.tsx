/** @jsxImportSource hono/jsx */
// /account: the signed-in admin's TOTP second factor and sessions.
import { type Context, Hono } from "hono";
import QRCode from "qrcode";
import { adminById, listSessions, startTotp, totpFor } from "../../store/admins.ts";
import { AccountPage } from "../../../views/auth.tsx";
import type { FieldErrors } from "../../../views/layout.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, fieldError, form, okNote, type UiDeps } from "./common.ts";

type PendingTotp = { secret: string; uri: string; qrSvg: string };

/** A TOTP secret waiting for its first code, with the QR code to scan it. */
async function pendingTotp(username: string, secret: string): Promise<PendingTotp> {
  const uri = totpFor(username, secret).toString();
  return { secret, uri, qrSvg: await QRCode.toString(uri, { type: "svg", margin: 1 }) };
}

export function accountRoutes(deps: UiDeps): Hono<Env> {
  const { db } = deps;
  const routes = new Hono<Env>();
  /** The signed-in admin's row as it is now (the session holds it as of login). */
  const currentAdmin = async (c: Context<Env>) => (await adminById(db, c.get("session")!.admin.id))!;
  const accountPage = async (c: Context<Env>, extra: { pending?: PendingTotp | null; recovery?: string[] | null; errors?: FieldErrors; status?: 200 | 422 } = {}) => {
    const session = c.get("session")!;
    const admin = await currentAdmin(c);
    return c.html(
      <AccountPage user={admin.username} csrf={session.csrf} totpEnabled={admin.totp_enabled === 1} pending={extra.pending} recovery={extra.recovery} sessions={await listSessions(db, admin.id)} currentSession={session.sessionId} errors={extra.errors} ok={okNote(c)} />,
      extra.status ?? 200,
    );
  };
  routes.get("/", (c) => accountPage(c));
  routes.post("/totp/start", async (c) => {
    const admin = c.get("session")!.admin;
    const secret = await startTotp(db, admin.id);
    return accountPage(c, { pending: await pendingTotp(admin.username, secret) });
  });
  routes.post("/totp/confirm", async (c) => {
    const admin = await currentAdmin(c);
    try {
      const recovery = await deps.services.accounts.enableTotp(adminActor(c), admin, (await form(c)).code ?? "");
      return accountPage(c, { recovery });
    } catch (err) {
      return accountPage(c, { pending: admin.totp_secret ? await pendingTotp(admin.username, admin.totp_secret) : null, errors: fieldError(err), status: 422 });
    }
  });
  routes.post("/totp/disable", async (c) => {
    const admin = c.get("session")!.admin;
    await deps.services.accounts.disableTotp(adminActor(c), admin);
    return back(c, "/account", "TOTP turned off.");
  });
  routes.post("/sessions/revoke", async (c) => {
    const session = c.get("session")!;
    await deps.services.accounts.revokeSession(adminActor(c), session.admin, (await form(c)).id ?? "");
    return back(c, "/account", "Session revoked.");
  });
  return routes;
}
