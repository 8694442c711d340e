// /settings: every setting's effective value and origin; a PATCH writes
// config.toml and applies what can change without a restart.
import { z } from "@hono/zod-openapi";
import { ConfigError, loadConfigWithOrigins, SETTINGS } from "../../config/index.ts";
import { writeSettings } from "../../config/write.ts";
import { type Api, ApiError, body, json, route, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { Setting, SettingsPatch } from "./schemas.ts";

const SECRET_SETTING = /password/;

export function mountSettingsRoutes(api: Api, deps: ApiDeps): void {
  const settings = () =>
    loadConfigWithOrigins(deps.configInput).effective.map((e) => ({ key: e.key, value: SECRET_SETTING.test(e.key) && e.shown ? "[set]" : e.shown, origin: e.origin }));
  api.openapi(
    route({ method: "get", path: "/settings", tags: ["settings"], summary: "Every setting's effective value and where it comes from", scope: "admin", responses: { 200: json(z.object({ items: z.array(Setting) }), "The settings") } }),
    (c) => c.json({ items: settings() }, 200),
  );
  api.openapi(
    route({
      method: "patch",
      path: "/settings",
      tags: ["settings"],
      summary: "Change settings in config.toml",
      description: "Validated as a whole first (nothing is written when a value is bad). Greylisting, scanning, smarthost, log retention, address defaults and destination verification apply at once; the rest after a restart. Environment variables and flags still win over the file.",
      scope: "admin",
      extraErrors: [422],
      request: body(SettingsPatch),
      responses: { 200: json(z.object({ items: z.array(Setting) }), "The settings after the change") },
    }),
    async (c) => {
      const patch = c.req.valid("json");
      const known = new Set(SETTINGS.map((s) => [s.section, s.key].filter(Boolean).join(".")));
      const unknown = Object.keys(patch).find((k) => !known.has(k));
      if (unknown) throw new ApiError(400, "bad_request", `unknown setting ${unknown}`, unknown);
      try {
        const { before, after } = writeSettings(deps.configInput, Object.fromEntries(Object.entries(patch).map(([k, v]) => [k, v ?? ""])));
        deps.applyConfig(after);
        await deps.services.audit(tokenActor(c), "settings.update", "config.toml", before, patch);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const field = Object.keys(patch).find((k) => err.source.includes(k.split(".").pop()!));
        throw new ApiError(422, "invalid", err.message.replace(/^invalid configuration: /, ""), field);
      }
      return c.json({ items: settings() }, 200);
    },
  );
}
