/** @jsxImportSource hono/jsx */
// /lists: the denylist, the allowlist and the greylist's recent entries.
import { type Context, Hono } from "hono";
import { duration } from "../../config/values.ts";
import { UserError } from "../../errors.ts";
import { listAllow } from "../../store/allowlist.ts";
import { activeDenylist, recentGreylist } from "../../store/senders.ts";
import type { FieldErrors } from "../../../views/layout.tsx";
import { ListsPage } from "../../../views/log.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, okNote, type UiDeps, user } from "./common.ts";

/** When a deny entry given for a duration (12h, 7d…) ends; null when none is given. */
function expiryOf(text: string | undefined): number | null {
  if (!text?.trim()) return null;
  try {
    return Date.now() + duration(text.trim());
  } catch {
    throw new UserError("invalid", "use a duration such as 12h, 7d or 30d", "expires");
  }
}

/** The two forms share the page: a refused value is shown next to the form's own value field. */
const onField = (errors: FieldErrors, field: string): FieldErrors => ("value" in errors ? { [field]: errors.value } : errors);

export function listRoutes(deps: UiDeps): Hono<Env> {
  const { db, services } = deps;
  const routes = new Hono<Env>();
  const listsPage = async (c: Context<Env>, errors?: FieldErrors, status: 200 | 422 = 200) => {
    const [deny, allow, greylist] = await Promise.all([activeDenylist(db), listAllow(db), recentGreylist(db, 100)]);
    return c.html(<ListsPage user={user(c)} csrf={csrfOf(c)} deny={deny} allow={allow} greylist={greylist} errors={errors} ok={okNote(c)} />, status);
  };
  routes.get("/", (c) => listsPage(c));
  routes.post("/deny", async (c) => {
    const f = await form(c);
    try {
      const entry = await services.lists.deny(adminActor(c), f.deny_value ?? "", { reason: f.reason ?? "", expiresAt: expiryOf(f.expires) });
      return back(c, "/lists", `Denied ${entry.value}.`);
    } catch (err) {
      return listsPage(c, onField(fieldError(err), "deny_value"), 422);
    }
  });
  routes.post("/deny/delete", async (c) => {
    const value = (await form(c)).value ?? "";
    await services.lists.undeny(adminActor(c), value);
    return back(c, "/lists", `Removed ${value} from the denylist.`);
  });
  routes.post("/allow", async (c) => {
    const f = await form(c);
    try {
      const entry = await services.lists.allow(adminActor(c), f.allow_value ?? "", f.note ?? "");
      return back(c, "/lists", `Allowlisted ${entry.value}.`);
    } catch (err) {
      return listsPage(c, onField(fieldError(err), "allow_value"), 422);
    }
  });
  routes.post("/allow/delete", async (c) => {
    const value = (await form(c)).value ?? "";
    await services.lists.disallow(adminActor(c), value);
    return back(c, "/lists", `Removed ${value} from the allowlist.`);
  });
  routes.post("/greylist/delete", async (c) => {
    const key = (await form(c)).key ?? "";
    await services.lists.forgetGreylist(adminActor(c), key);
    return back(c, "/lists", "Greylist entry forgotten.");
  });
  return routes;
}
