// /tokens: API tokens (create, list, revoke); a secret is shown once.
import { z } from "@hono/zod-openapi";
import { tokenJson } from "../../service/json.ts";
import { listTokens } from "../../store/tokens.ts";
import { type Api, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { Token, TokenCreate, TokenName } from "./schemas.ts";

export function mountTokenRoutes(api: Api, { db, services }: ApiDeps): void {
  api.openapi(
    scopedRoute({ method: "get", path: "/tokens", tags: ["tokens"], summary: "API tokens (never their secret)", scope: "admin", responses: { 200: json(z.object({ items: z.array(Token) }), "The tokens, revoked ones included") } }),
    async (c) => c.json({ items: (await listTokens(db)).map(tokenJson) }, 200),
  );
  api.openapi(
    scopedRoute({
      method: "post",
      path: "/tokens",
      tags: ["tokens"],
      summary: "Create a token; its secret is in this answer only",
      scope: "admin",
      extraErrors: [409, 422],
      request: body(TokenCreate),
      responses: { 201: json(z.object({ token: z.string(), info: Token }), "The token") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const created = await services.tokens.create(tokenActor(c), input.name, input.scope);
      return c.json({ token: created.token, info: tokenJson(created.info) }, 201);
    },
  );
  api.openapi(
    scopedRoute({ method: "delete", path: "/tokens/{name}", tags: ["tokens"], summary: "Revoke a token", scope: "admin", extraErrors: [404], request: { params: TokenName }, responses: { 204: { description: "Revoked" } } }),
    async (c) => {
      await services.tokens.revoke(tokenActor(c), c.req.valid("param").name);
      return c.body(null, 204);
    },
  );
}
