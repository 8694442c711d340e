// Every request body is bounded before a route reads it: an unauthenticated
// POST /login must not make the server buffer and parse 100 MB. A declared
// Content-Length over the limit is refused without reading a byte; a chunked
// body is counted as it arrives (hono/body-limit).
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { API_BASE } from "./api/index.ts";

const MB = 1 << 20;
/** Forms and API requests: a few fields, at most a page of text. */
export const FORM_BODY_LIMIT = 1 * MB;
/** An alias import carries a whole domain's aliases as text. */
export const IMPORT_BODY_LIMIT = 5 * MB;
const IMPORT_PATHS = new Set(["/aliases/import", `${API_BASE}/aliases/import`]);

export function bodyLimits(): MiddlewareHandler {
  const limited = (maxSize: number) => bodyLimit({ maxSize, onError: (c) => tooLarge(c, maxSize) });
  const forms = limited(FORM_BODY_LIMIT);
  const imports = limited(IMPORT_BODY_LIMIT);
  return (c, next) => (IMPORT_PATHS.has(c.req.path) ? imports : forms)(c, next);
}

function tooLarge(c: Context, maxSize: number): Response {
  const message = `the request body is larger than the limit of ${maxSize / MB} MB`;
  if (c.req.path.startsWith(`${API_BASE}/`)) return c.json({ error: { code: "too_large", message } }, 413);
  return c.text(`${message}\n`, 413);
}
