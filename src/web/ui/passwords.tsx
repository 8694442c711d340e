/** @jsxImportSource hono/jsx */
// /passwords: app passwords for sending as an alias (create, revoke); a secret is shown once.
import { type Context, Hono } from "hono";
import { listPasswords } from "../../store/passwords.ts";
import { PasswordsPage, type PasswordRow } from "../../../views/passwords.tsx";
import type { FieldErrors } from "../../../views/layout.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, okNote, type UiDeps, user } from "./common.ts";

export function passwordRoutes(deps: UiDeps): Hono<Env> {
  const { db, services, config } = deps;
  const routes = new Hono<Env>();
  const page = async (c: Context<Env>, extra: { created?: { row: PasswordRow; password: string }; values?: Record<string, string>; errors?: FieldErrors; status?: 200 | 201 | 422 } = {}) =>
    c.html(
      <PasswordsPage
        user={user(c)}
        csrf={csrfOf(c)}
        rows={await listPasswords(db)}
        created={extra.created}
        port={config.submission.enabled ? config.submission.port : null}
        hostname={config.hostname}
        values={extra.values}
        errors={extra.errors}
        ok={okNote(c)}
      />,
      extra.status ?? 200,
    );
  routes.get("/", (c) => page(c));
  routes.post("/", async (c) => {
    const f = await form(c);
    try {
      const { password, info } = await services.passwords.create(adminActor(c), (f.send_as ?? "").trim(), (f.name ?? "").trim());
      // Shown in this answer only: the page is not a redirect target, so a reload does not show it again.
      return page(c, { created: { row: info, password }, status: 201 });
    } catch (err) {
      return page(c, { values: f, errors: fieldError(err, "name"), status: 422 });
    }
  });
  routes.post("/revoke", async (c) => {
    const info = await services.passwords.revoke(adminActor(c), Number((await form(c)).id));
    return back(c, "/passwords", `App password ${info.name} of ${info.identity} revoked.`);
  });
  return routes;
}
