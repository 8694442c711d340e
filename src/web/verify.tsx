/** @jsxImportSource hono/jsx */
// The public end of destination verification: GET shows the confirm page,
// POST confirms. The signed token is the only credential.
import type { Hono } from "hono";
import { UserError } from "../errors.ts";
import type { Services } from "../service/index.ts";
import { VerifyDone, VerifyFailed, VerifyPage } from "../../views/verify.tsx";
import type { Env } from "./session.ts";

export function mountVerify(app: Hono<Env>, services: Services): void {
  const problem = (reason: "invalid" | "expired") => (reason === "expired" ? "This link has expired (links are valid for 24 hours)." : "This link is not valid.");

  app.get("/verify/:token", (c) => {
    const token = c.req.param("token");
    const check = services.destinations.check(token);
    if (!check.ok) return c.html(<VerifyFailed message={problem(check.reason)} />, 400);
    return c.html(<VerifyPage address={check.address} token={token} />);
  });

  app.post("/verify/:token", async (c) => {
    const check = services.destinations.check(c.req.param("token"));
    if (!check.ok) return c.html(<VerifyFailed message={problem(check.reason)} />, 400);
    try {
      const destination = await services.destinations.confirm(c.req.param("token"), c.get("ip"));
      return c.html(<VerifyDone address={destination.address} />);
    } catch (err) {
      if (err instanceof UserError) return c.html(<VerifyFailed message={err.message} />, err.kind === "not_found" ? 404 : 400);
      throw err;
    }
  });
}
