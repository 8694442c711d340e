/** @jsxImportSource hono/jsx */
// /destinations: forwarding destinations outside the managed domains, their
// verification mail and confirmation by code.
import { type Context, Hono } from "hono";
import type { FieldErrors } from "../../../views/layout.tsx";
import { DestinationsPage } from "../../../views/destinations.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, okNote, type UiDeps, user } from "./common.ts";

export function destinationRoutes(deps: UiDeps): Hono<Env> {
  const { services } = deps;
  const routes = new Hono<Env>();
  const destinationsPage = async (c: Context<Env>, extra: { values?: Record<string, string>; errors?: FieldErrors; status?: 200 | 422 } = {}) =>
    c.html(
      <DestinationsPage user={user(c)} csrf={csrfOf(c)} rows={await services.destinations.list()} verifying={deps.config.delivery.verifyDestinations} values={extra.values} errors={extra.errors} ok={okNote(c)} />,
      extra.status ?? 200,
    );
  routes.get("/", (c) => destinationsPage(c));
  routes.post("/", async (c) => {
    const f = await form(c);
    try {
      const { destination, sent } = await services.destinations.add(adminActor(c), f.address ?? "");
      const note = destination.status === "verified" ? `${destination.address} is confirmed (${destination.confirmed_by}).` : sent ? `Verification mail sent to ${destination.address}.` : `${destination.address} is waiting for confirmation.`;
      return back(c, "/destinations", note);
    } catch (err) {
      return destinationsPage(c, { values: f, errors: fieldError(err, "address"), status: 422 });
    }
  });
  routes.post("/resend", async (c) => {
    const address = (await form(c)).address ?? "";
    try {
      await services.destinations.resend(adminActor(c), address);
      return back(c, "/destinations", `Verification mail sent again to ${address}.`);
    } catch (err) {
      return destinationsPage(c, { errors: fieldError(err, "address"), status: 422 });
    }
  });
  routes.post("/confirm", async (c) => {
    const f = await form(c);
    try {
      const destination = await services.destinations.confirmByCode(adminActor(c), f.code ?? "");
      return back(c, "/destinations", `${destination.address} is confirmed: mail is forwarded there now.`);
    } catch (err) {
      return destinationsPage(c, { values: f, errors: fieldError(err, "code"), status: 422 });
    }
  });
  routes.post("/remove", async (c) => {
    const address = (await form(c)).address ?? "";
    await services.destinations.remove(adminActor(c), address);
    return back(c, "/destinations", `Removed ${address}; it must verify again to receive mail.`);
  });
  return routes;
}
