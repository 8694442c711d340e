/** @jsxImportSource hono/jsx */
// /settings: every setting's effective value and origin (secrets masked); the
// ones declared with a form label are saved through services.settings.update,
// which writes config.toml (with PostgreSQL: the database, for all but
// node-local settings) and applies those declared live.
import { type Context, Hono } from "hono";
import { SETTINGS, settingKey } from "../../config/index.ts";
import type { FieldErrors } from "../../../views/layout.tsx";
import { type SettingField, SettingsPage } from "../../../views/log.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, okNote, type UiDeps, user } from "./common.ts";

const FIELDS: SettingField[] = SETTINGS.flatMap((s) => (s.form ? [{ key: settingKey(s), ...s.form, secret: !!s.secret, live: !!s.live, node: !!s.node }] : []));

export function settingsRoutes(deps: UiDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const settingsPage = async (c: Context<Env>, extra: { errors?: FieldErrors; values?: Record<string, string>; status?: 200 | 422 } = {}) => {
    const { effective, configFile, sharedInDatabase } = await deps.services.settings.list();
    const values = extra.values ?? Object.fromEntries(effective.map((e) => [e.key, e.shown]));
    return c.html(<SettingsPage user={user(c)} csrf={csrfOf(c)} fields={FIELDS} effective={effective} values={values} errors={extra.errors} ok={okNote(c)} configFile={configFile} sharedInDatabase={sharedInDatabase} />, extra.status ?? 200);
  };
  routes.get("/", (c) => settingsPage(c));
  routes.post("/", async (c) => {
    const f = await form(c);
    // A secret is never sent to the page, so its empty field keeps the current value.
    const changes = Object.fromEntries(FIELDS.filter((field) => !(field.secret && !f[field.key])).map((field) => [field.key, f[field.key] ?? ""]));
    try {
      await deps.services.settings.update(adminActor(c), changes);
      return back(c, "/settings", "Settings saved and applied.");
    } catch (err) {
      return settingsPage(c, { errors: fieldError(err), values: f, status: 422 });
    }
  });
  return routes;
}
