/** @jsxImportSource hono/jsx */
// /catch-all: the learning catch-all's names and the admin's one-click answers
// (docs/aliases.md, "Learning catch-all"); the same service as the API.
import { type Context, Hono } from "hono";
import type { CatchAllVerdict } from "../../service/catchall.ts";
import type { FieldErrors } from "../../../views/layout.tsx";
import { CatchAllPage, CatchAllRow } from "../../../views/catchall.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, isHtmx, okNote, type UiDeps, user } from "./common.ts";

export function catchAllRoutes(deps: UiDeps): Hono<Env> {
  const { services, config } = deps;
  const routes = new Hono<Env>();
  const page = async (c: Context<Env>, errors?: FieldErrors, status: 200 | 422 = 200) =>
    c.html(<CatchAllPage user={user(c)} csrf={csrfOf(c)} names={await services.catchAll.list()} learn={config.catchall.learn} threshold={config.catchall.threshold} ok={okNote(c)} errors={errors} />, status);
  const answer = (verdict: CatchAllVerdict) => async (c: Context<Env>) => {
    const address = (await form(c)).address ?? "";
    try {
      const row = await services.catchAll.decide(adminActor(c), address, verdict);
      if (isHtmx(c)) return c.html(<CatchAllRow row={row} csrf={csrfOf(c)} />);
      return back(c, "/catch-all", `${row.name}@${row.domain} is ${verdict === "refused" ? "refused" : "allowed again"}.`);
    } catch (err) {
      return page(c, fieldError(err, "address"), 422);
    }
  };
  routes.get("/", (c) => page(c));
  routes.post("/refuse", answer("refused"));
  routes.post("/allow", answer("allowed"));
  return routes;
}
