// /addresses: a new address in one call (an exact alias, optionally on a
// random or a named subdomain).
import { aliasJson } from "./aliases.ts";
import { waitingJson } from "../../service/json.ts";
import { type Api, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { AddressCreate, AddressCreated } from "./schemas.ts";

export function mountAddressRoutes(api: Api, { services }: ApiDeps): void {
  api.openapi(
    scopedRoute({
      method: "post",
      path: "/addresses",
      tags: ["addresses"],
      summary: "Create an address: an exact alias, optionally on a random or a named subdomain",
      description:
        "random_subdomain appends a random label of the domain's random_subdomain_length (lowercase letters and digits), e.g. name@x7k2p9q1.example.com; omitted, the domain's random_subdomain setting decides. A named subdomain (team, dev.team) needs the domain's subdomain matching. Without name a random local part is made.",
      scope: "write",
      extraErrors: [409, 422],
      request: body(AddressCreate),
      responses: { 201: json(AddressCreated, "The new address") },
    }),
    async (c) => {
      const created = await services.addresses.create(tokenActor(c), c.req.valid("json"));
      return c.json({ address: created.address, alias: aliasJson(created.alias), ...waitingJson(created.waiting) }, 201);
    },
  );
}
