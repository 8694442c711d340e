/** @jsxImportSource hono/jsx */
// /settings: every setting's effective value and origin; the editable ones
// are written to config.toml and applied at once.
import { type Context, Hono } from "hono";
import { loadConfigWithOrigins } from "../../config/index.ts";
import { writeSettings } from "../../config/write.ts";
import { audit } from "../../store/audit.ts";
import type { FieldErrors } from "../../../views/layout.tsx";
import { EDITABLE, SettingsPage } from "../../../views/log.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, form, okNote, type UiDeps, user } from "./common.ts";

export function settingsRoutes(deps: UiDeps): Hono<Env> {
  const { db } = deps;
  const routes = new Hono<Env>();
  const settingsPage = (c: Context<Env>, extra: { errors?: FieldErrors; values?: Record<string, string>; status?: 200 | 422 } = {}) => {
    const { effective, config } = loadConfigWithOrigins(deps.configInput);
    const shown = effective.map((e) => ({ key: e.key, value: e.shown || "(none)", origin: e.origin }));
    const values = extra.values ?? Object.fromEntries(effective.map((e) => [e.key, e.shown]));
    return c.html(
      <SettingsPage user={user(c)} csrf={csrfOf(c)} effective={shown} values={values} errors={extra.errors} ok={okNote(c)} configFile={config.configFile ?? `${config.dataDir}/config.toml`} />,
      extra.status ?? 200,
    );
  };
  routes.get("/", (c) => settingsPage(c));
  routes.post("/", async (c) => {
    const f = await form(c);
    const changes = Object.fromEntries(EDITABLE.map(([key]) => [key, f[key] ?? ""]).filter(([key, value]) => !(key === "smarthost.password" && value === "")));
    try {
      const { before, after } = writeSettings(deps.configInput, changes);
      deps.applyConfig(after);
      await audit(db, adminActor(c), "settings.update", "config.toml", before, changes);
      return back(c, "/settings", "Settings saved and applied.");
    } catch (err) {
      const source = (err as { source?: string }).source;
      if (source === undefined) throw err;
      const key = EDITABLE.find(([k]) => source.includes(k.split(".").pop()!))?.[0] ?? "form";
      return settingsPage(c, { errors: { [key]: (err as Error).message.replace(/^invalid configuration: /, "") }, values: f, status: 422 });
    }
  });
  return routes;
}
