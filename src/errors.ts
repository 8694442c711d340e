// Errors a user can cause and fix, as data: the CLI prints them, the API maps
// `kind` to an HTTP status and `field` to the offending input.
export type UserErrorKind = "invalid" | "conflict" | "not_found";

export class UserError extends Error {
  constructor(
    readonly kind: UserErrorKind,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The same error with its field named as the caller's request names it (the alias layer says "pattern" where a form says "name"). */
export function renameField(err: unknown, names: Record<string, string>): unknown {
  if (err instanceof UserError && err.field && names[err.field]) return new UserError(err.kind, err.message, names[err.field]);
  return err;
}
