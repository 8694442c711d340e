// What every admin UI route module shares: its dependencies, the signed-in
// admin, form parsing, field errors and the redirect with a confirmation note.
import type { Context } from "hono";
import type { Config } from "../../config/index.ts";
import type { Resolver } from "../../dns/resolver.ts";
import { UserError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { Router } from "../../routing/router.ts";
import type { Services } from "../../service/index.ts";
import type { DB } from "../../store/db.ts";
import type { FieldErrors } from "../../../views/layout.tsx";
import { type Env, formBody } from "../session.ts";

export interface UiDeps {
  db: DB;
  config: Config;
  resolver: Resolver;
  /** A resolver without a cache, for checking what DNS publishes right now. */
  liveResolver: Resolver;
  router: Router;
  logger: Logger;
  setupToken: () => string | null;
  secureCookies: boolean;
  services: Services;
  /** The API's OpenAPI document, for its reference page. */
  apiDocument: () => unknown;
}

export const PER_PAGE = 50;

// What the helpers read of a request's context: narrow, so that routes whose
// middleware adds variables (the alias of /aliases/:id) can pass theirs.
type Signed = Pick<Context<Env>, "get">;
type Asking = Pick<Context<Env>, "req">;

/** The signed-in admin's name (the routes here run behind the session check in ../session.ts). */
export const user = (c: Signed) => c.get("session")!.admin.username;
export const csrfOf = (c: Signed) => c.get("session")!.csrf;
export const isHtmx = (c: Asking) => c.req.header("hx-request") === "true";
/** The 1-based page number of a paged list. */
export const pageOf = (c: Asking) => Math.max(1, Number(c.req.query("page")) || 1);

/** The posted form's text fields (a file field reads as empty). */
export async function form(c: Asking): Promise<Record<string, string>> {
  const body = await formBody(c);
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === "string" ? v : ""]));
}

/** A refused input, shown next to its field; anything else is a fault and propagates. */
export function fieldError(err: unknown, fallback = "form"): FieldErrors {
  if (err instanceof UserError) return { [err.field ?? fallback]: err.message };
  throw err;
}

/** Redirects to `path` with a confirmation note the page shows once. */
export const back = (c: Pick<Context<Env>, "redirect">, path: string, note: string) => c.redirect(`${path}${path.includes("?") ? "&" : "?"}ok=${encodeURIComponent(note)}`);
/** The confirmation note passed by `back`. */
export const okNote = (c: Asking) => c.req.query("ok") ?? null;

/**
 * The same check as `mailferry dns check <name>`: the domain's records and this
 * server's host records (a pending DKIM key whose record DNS serves starts signing).
 */
export const liveChecks = (deps: UiDeps, name: string) => deps.services.domains.checkDns([name], (n, t) => deps.liveResolver.resolve(n, t));
