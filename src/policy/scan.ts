// Optional content scanning with rspamd (docs/delivery-and-authentication.md): the message is POSTed to
// its /checkv2 endpoint and its action decides.
import { Readable } from "node:stream";
import { type Decision, decision } from "../mail/decision.ts";
import { bodyLength, type MessageParts, openMessage } from "../mail/message.ts";
import { reply } from "../mail/reply.ts";
import type { Session } from "../smtp/session.ts";

export interface RspamdAnswer {
  action: string;
  score: number;
  requiredScore: number;
  symbols: string[];
  /** rspamd's own text for the sender, e.g. "Gtube pattern". */
  message: string | null;
}

export interface ScanResult {
  /** A refusal, or null to deliver. */
  refusal: Decision | null;
  /** Headers for the forwarded copies (X-Spam-*), "" when none. */
  headers: string;
  /** For the mail log. */
  summary: { action: string; score?: number; error?: string };
}

/** The message is streamed to rspamd, never held whole (src/mail/message.ts). */
export async function scanWithRspamd(url: string, message: MessageParts, session: Session, recipients: string[], timeoutMs = 30_000): Promise<RspamdAnswer> {
  const length = message.head.length + (await bodyLength(message.body));
  const headers: Record<string, string> = { IP: session.remoteIp, From: session.mailFrom ?? "", "Content-Type": "message/rfc822", "Content-Length": String(length) };
  if (session.helo) headers.Helo = session.helo;
  if (session.verifiedHost) headers.Hostname = session.verifiedHost;
  const res = await fetch(new URL("/checkv2", url), {
    method: "POST",
    body: Readable.toWeb(openMessage(message)) as ReadableStream,
    headers: { ...headers, ...Object.fromEntries(recipients.map((r, i) => [i === 0 ? "Rcpt" : `Rcpt-${i}`, r])) },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) throw new Error(`rspamd answered HTTP ${res.status}`);
  const body = (await res.json()) as { action?: string; score?: number; required_score?: number; symbols?: Record<string, unknown>; messages?: { smtp_message?: string } };
  if (typeof body.action !== "string") throw new Error("rspamd answered without an action");
  return { action: body.action, score: body.score ?? 0, requiredScore: body.required_score ?? 0, symbols: Object.keys(body.symbols ?? {}), message: body.messages?.smtp_message ?? null };
}

export function scanResult(result: RspamdAnswer): ScanResult {
  const score = `score ${result.score.toFixed(1)} of ${result.requiredScore.toFixed(1)}`;
  const because = result.message ? `: ${result.message}` : "";
  const summary = { action: result.action, score: result.score };
  switch (result.action) {
    case "reject":
      return { refusal: decision(reply(554, "5.7.1", `Message rejected as spam (${score})${because}`), "spam"), headers: "", summary };
    case "soft reject":
    case "greylist":
      return { refusal: decision(reply(451, "4.7.1", `Message deferred by the spam filter (${score}), please try again later`), "spam_deferred"), headers: "", summary };
    case "add header":
    case "rewrite subject":
      return {
        refusal: null,
        headers: `X-Spam-Flag: YES\r\nX-Spam-Score: ${result.score.toFixed(2)} / ${result.requiredScore.toFixed(2)}\r\nX-Spam-Status: Yes, action=${result.action}, symbols=${result.symbols.slice(0, 30).join(",")}\r\n`,
        summary,
      };
    default:
      return { refusal: null, headers: "", summary };
  }
}

/** The scanner could not answer: 421 (the sender retries) unless configured to fail open. */
export function scannerDown(error: unknown, failOpen: boolean): ScanResult {
  const message = error instanceof Error ? error.message : String(error);
  const summary = { action: failOpen ? "unscanned" : "unavailable", error: message };
  if (failOpen) return { refusal: null, headers: "", summary };
  return { refusal: decision(reply(421, "4.7.0", `Content scanner unavailable (${message}), please try again later`), "scanner_down"), headers: "", summary };
}
