// /passwords: app passwords for sending as an alias (docs/send-as.md): list,
// create (the secret in that answer only), revoke.
import { z } from "@hono/zod-openapi";
import { passwordJson } from "../../service/passwords.ts";
import { listPasswords } from "../../store/passwords.ts";
import { type Api, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";

const iso = z.string().openapi({ format: "date-time" });
const AppPassword = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: z.enum(["address", "domain"]),
    send_as: z.string().openapi({ description: "The address it may send as, or the domain any address of which it may send as" }),
    created_at: iso,
    last_used_at: iso.nullable(),
    revoked_at: iso.nullable(),
  })
  .openapi("AppPassword");
const AppPasswordCreate = z
  .strictObject({ send_as: z.string().min(1).max(320).openapi({ description: "An address of a managed domain, or a managed domain", example: "hello@example.com" }), name: z.string().min(1).max(64) })
  .openapi("AppPasswordCreate");
const AppPasswordId = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) });

export function mountPasswordRoutes(api: Api, { db, services }: ApiDeps): void {
  api.openapi(
    scopedRoute({ method: "get", path: "/passwords", tags: ["passwords"], summary: "App passwords (never their secret)", scope: "admin", responses: { 200: json(z.object({ items: z.array(AppPassword) }), "The app passwords, revoked ones included") } }),
    async (c) => c.json({ items: (await listPasswords(db)).map(passwordJson) }, 200),
  );
  api.openapi(
    scopedRoute({
      method: "post",
      path: "/passwords",
      tags: ["passwords"],
      summary: "Create an app password; the password is in this answer only",
      scope: "admin",
      extraErrors: [409, 422],
      request: body(AppPasswordCreate),
      responses: { 201: json(z.object({ password: z.string(), info: AppPassword }), "The app password") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const created = await services.passwords.create(tokenActor(c), input.send_as, input.name);
      return c.json({ password: created.password, info: passwordJson(created.info) }, 201);
    },
  );
  api.openapi(
    scopedRoute({ method: "delete", path: "/passwords/{id}", tags: ["passwords"], summary: "Revoke an app password", scope: "admin", extraErrors: [404], request: { params: AppPasswordId }, responses: { 204: { description: "Revoked" } } }),
    async (c) => {
      await services.passwords.revoke(tokenActor(c), c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
}
