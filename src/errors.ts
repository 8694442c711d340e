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
