// /settings: every setting's effective value and origin (secrets masked); a
// PATCH goes through services.settings.update, which writes config.toml (with
// PostgreSQL: the database, for all but node-local settings) and applies the
// settings declared live.
import { z } from "@hono/zod-openapi";
import { findSetting, SETTINGS, settingKey } from "../../config/index.ts";
import { type Api, ApiError, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { SettingBody, SettingsPatch } from "./schemas.ts";

const LIVE = SETTINGS.filter((s) => s.live).map(settingKey);
const NODE = SETTINGS.filter((s) => s.node).map(settingKey);

export function mountSettingsRoutes(api: Api, deps: ApiDeps): void {
  const settings = async () => (await deps.services.settings.list()).effective.map((e) => ({ key: e.key, value: e.shown, origin: e.origin }));
  api.openapi(
    scopedRoute({ method: "get", path: "/settings", tags: ["settings"], summary: "Every setting's effective value and where it comes from", scope: "admin", responses: { 200: json(z.object({ items: z.array(SettingBody) }), "The settings") } }),
    async (c) => c.json({ items: await settings() }, 200),
  );
  api.openapi(
    scopedRoute({
      method: "patch",
      path: "/settings",
      tags: ["settings"],
      summary: "Change settings in config.toml, or with PostgreSQL in the database all nodes share",
      description: `Validated as a whole first (nothing is written when a value is bad). With PostgreSQL, every setting but the node's own (${NODE.join(", ")}) is kept in the database and applies on every node. ${LIVE.join(", ")} apply at once; the rest after a restart. Environment variables and flags still win over the file and the database. Secrets read back as set, never their value.`,
      scope: "admin",
      extraErrors: [422],
      request: body(SettingsPatch),
      responses: { 200: json(z.object({ items: z.array(SettingBody) }), "The settings after the change") },
    }),
    async (c) => {
      const patch = c.req.valid("json");
      // A key no setting has is a malformed request (400), not a bad value (422).
      const unknown = Object.keys(patch).find((key) => !findSetting(key));
      if (unknown) throw new ApiError(400, "bad_request", `unknown setting ${unknown}`, unknown);
      await deps.services.settings.update(tokenActor(c), patch);
      return c.json({ items: await settings() }, 200);
    },
  );
}
