// SMTP answers as data. Decision code returns a Reply; the session layer sends
// exactly that code, enhanced status and text.

export interface Reply {
  code: number;
  /** RFC 3463 enhanced status code, e.g. "5.1.1". */
  enhanced: string;
  text: string;
}

export function reply(code: number, enhanced: string, text: string): Reply {
  return { code, enhanced, text };
}

export const isAccepted = (r: Reply): boolean => r.code < 400;

/** The full reply line, e.g. `550 5.7.1 Relaying denied`. */
export const formatReply = (r: Reply): string => `${r.code} ${r.enhanced} ${r.text}`;

/** An Error smtp-server turns into this exact reply (it sends `responseCode message`). */
export function toServerError(r: Reply): Error & { responseCode: number } {
  return Object.assign(new Error(`${r.enhanced} ${r.text}`), { responseCode: r.code });
}

/** Any failure of our own (database, DNS, bug): the sender keeps the message and retries. */
export const INTERNAL_ERROR = reply(421, "4.3.0", "Temporary local problem, please try again later");
