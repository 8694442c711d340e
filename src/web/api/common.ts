// What every API route module shares: the environment, the error type, the
// route helper that enforces and documents scopes, and small converters.
import { createRoute, type OpenAPIHono, type RouteConfig, type z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Actor } from "../../store/audit.ts";
import type { TokenScope } from "../../store/schema.ts";
import { SCOPE_RANK, type TokenInfo } from "../../store/tokens.ts";
import { ErrorBody } from "./schemas.ts";

export type ApiEnv = { Variables: { token: TokenInfo; ip: string } };
export type Api = OpenAPIHono<ApiEnv>;

type ErrorCode = z.infer<typeof ErrorBody>["error"]["code"];

/** An answer other than success, as data: onError turns it into the one error shape. */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 422 | 429,
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const USER_ERROR_STATUS = { invalid: [422, "invalid"], conflict: [409, "conflict"], not_found: [404, "not_found"] } as const;

const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ErrorBody } } });
const ERRORS = {
  400: errorResponse("The request is malformed: bad JSON, a wrong type or an unknown field"),
  401: errorResponse("No valid token (missing, unknown or revoked)"),
  403: errorResponse("The token's scope does not allow this"),
  429: errorResponse("Too many requests for this token; see Retry-After"),
};

/**
 * A route with the scope it needs, enforced and documented together, and the
 * error answers every route can give.
 */
export function scopedRoute<R extends RouteConfig>(config: R & { scope: TokenScope; extraErrors?: (404 | 409 | 422)[] }) {
  const { scope, extraErrors = [], ...rest } = config;
  const extra = Object.fromEntries(extraErrors.map((status) => [status, errorResponse({ 404: "No such resource", 409: "It conflicts with what exists", 422: "The values are not acceptable (the field is named)" }[status])]));
  return createRoute({
    ...rest,
    description: `${rest.description ?? ""}\n\nNeeds a token with scope ${scope}${scope === "admin" ? "" : ` (or ${scope === "read" ? "write or admin" : "admin"})`}.`.trim(),
    security: [{ bearer: [] }],
    middleware: [requireScope(scope)] as const,
    responses: { ...rest.responses, ...ERRORS, ...extra },
  } as unknown as R);
}

function requireScope(scope: TokenScope): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const token = c.get("token");
    if (SCOPE_RANK[token.scope] < SCOPE_RANK[scope]) throw new ApiError(403, "forbidden", `this needs a token with scope ${scope}; ${token.name} has ${token.scope}`);
    await next();
  };
}

/** A token acts in its name; only an admin-scope token's word confirms destinations. */
export const tokenActor = (c: { get(key: "token"): TokenInfo; get(key: "ip"): string }): Actor => ({
  name: `token:${c.get("token").name}`,
  ip: c.get("ip"),
  confirmsDestinations: c.get("token").scope === "admin",
});



export const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
export const body = <T extends z.ZodType>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });
