/** @jsxImportSource hono/jsx */
// /api-access: API tokens (create, revoke) and the API reference.
import { type Context, Hono } from "hono";
import { listTokens } from "../../store/tokens.ts";
import { type ApiDocument, ApiPage } from "../../../views/api.tsx";
import type { FieldErrors } from "../../../views/layout.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, okNote, type UiDeps, user } from "./common.ts";

export function apiAccessRoutes(deps: UiDeps): Hono<Env> {
  const { db, services } = deps;
  const routes = new Hono<Env>();
  const apiPage = async (c: Context<Env>, extra: { created?: { name: string; token: string }; values?: Record<string, string>; errors?: FieldErrors; status?: 200 | 201 | 422 } = {}) =>
    c.html(
      <ApiPage user={user(c)} csrf={csrfOf(c)} tokens={await listTokens(db)} created={extra.created} doc={deps.apiDocument() as ApiDocument} values={extra.values} errors={extra.errors} ok={okNote(c)} />,
      extra.status ?? 200,
    );
  routes.get("/", (c) => apiPage(c));
  routes.post("/", async (c) => {
    const f = await form(c);
    try {
      const { token, info } = await services.tokens.create(adminActor(c), (f.name ?? "").trim(), f.scope ?? "");
      // Shown in this answer only: the page is not a redirect target, so a reload does not show it again.
      return apiPage(c, { created: { name: info.name, token }, status: 201 });
    } catch (err) {
      return apiPage(c, { values: f, errors: fieldError(err, "name"), status: 422 });
    }
  });
  routes.post("/revoke", async (c) => {
    const name = (await form(c)).name ?? "";
    await services.tokens.revoke(adminActor(c), name);
    return back(c, "/api-access", `Token ${name} revoked.`);
  });
  return routes;
}
