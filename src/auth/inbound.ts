// Who really sent a message: SPF, DKIM, DMARC, ARC and BIMI by mailauth,
// through mailferry's resolver, and what to do about it (docs/delivery-and-authentication.md).
import type { authenticate } from "mailauth";
import type { Resolver } from "../dns/resolver.ts";
import { editHeaders, parseHeaderBlock } from "../mail/headers.ts";
import { type Decision, decision } from "../mail/decision.ts";
import { reply } from "../mail/reply.ts";
import { Readable } from "node:stream";
import { type MessageParts, openBody } from "../mail/message.ts";
import type { bodyHasher } from "./dkim.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";

export interface AuthResults {
  /** Received-SPF and Authentication-Results, to prepend to each copy. */
  headers: string;
  spf: string;
  dkim: string;
  dmarc: string;
  arc: string;
  bimi: string;
  /** Author (From) domain and its effective DMARC policy, when it has one. */
  fromDomain: string | null;
  dmarcPolicy: "reject" | "quarantine" | "none" | null;
  /** pct= of the DMARC record (historic, still honoured), 100 when absent. */
  dmarcPct: number;
  /** A DKIM signature that passes and aligns with the From domain: it survives forwarding. */
  alignedDkim: boolean;
  spfAligned: boolean;
  /** The inputs of an ARC seal on forwarded copies. */
  arcSeal: { authResults: string; cv: string };
  /** The relaxed/sha256 hash of the body, taken as authentication read it: what the DKIM signature and ARC seal of each copy use. */
  bodyHash: string;
  /** The raw mailauth verdicts (JSON-safe), for the mail log and webhooks. */
  detail: { spf: unknown; dkim: unknown; dmarc: unknown; arc: unknown; bimi: unknown };
}

type MailauthResult = Awaited<ReturnType<typeof authenticate>>;

/** The parts of a session that authentication looks at (a worker thread gets only these). */
export type AuthSession = Pick<Session, "remoteIp" | "helo" | "mailFrom">;

/** The message is read as a stream: a large one is never held whole (src/mail/message.ts). */
export async function authenticateInbound(session: AuthSession, message: MessageParts, hostname: string, lookup: Resolver["forMailauth"]): Promise<AuthResults> {
  // Loaded here, in the worker that runs this, not with the module: the main thread imports
  // it for the pure decisions only, and mailauth whole is a fifth of the start-up time.
  const [{ authenticate }, { bodyHasher }] = await Promise.all([import("mailauth"), import("./dkim.ts")]);
  const hash = bodyHasher();
  const result = (await authenticate(hashingBody(message, hash), {
    ip: session.remoteIp,
    helo: session.helo ?? session.remoteIp,
    sender: session.mailFrom ?? "",
    mta: hostname,
    resolver: lookup,
  })) as MailauthResult & Record<string, any>;
  const dkimResults = (result.dkim?.results ?? []) as { status: { result: string; aligned?: string | false } }[];
  const dmarc = result.dmarc || null;
  const pctTag = dmarc && typeof dmarc.rr === "string" ? /(?:^|;)\s*pct\s*=\s*(\d{1,3})\s*(?:;|$)/i.exec(dmarc.rr) : null;
  const verdict = (r: unknown): string => ((r as { status?: { result?: string } } | null)?.status?.result ?? "none");
  return {
    headers: result.headers,
    spf: verdict(result.spf),
    dkim: dkimResults.length ? dkimResults.map((d) => d.status.result).join(",") : "none",
    dmarc: dmarc ? verdict(dmarc) : "none",
    arc: verdict(result.arc),
    bimi: verdict(result.bimi),
    fromDomain: dmarc?.status?.header?.from ?? null,
    dmarcPolicy: (dmarc?.policy as AuthResults["dmarcPolicy"] | undefined) ?? null,
    dmarcPct: pctTag ? Math.min(100, Number(pctTag[1])) : 100,
    // Without a DMARC record mailauth still marks each passing signature aligned with From, or not.
    alignedDkim: !!dmarc?.alignment?.dkim?.result || dkimResults.some((d) => d.status.result === "pass" && !!d.status.aligned),
    spfAligned: !!dmarc?.alignment?.spf?.result,
    arcSeal: { authResults: result.arc ? (result.arc.authResults ?? "") : "", cv: result.arc ? (result.arc.status?.result ?? "none") : "none" },
    bodyHash: hash.digest(),
    detail: { spf: result.spf, dkim: result.dkim, dmarc, arc: result.arc, bimi: result.bimi },
  };
}

/** The whole message as a stream, its body going through `hash` on the way (one read of a spooled message). */
function hashingBody({ head, body }: MessageParts, hash: ReturnType<typeof bodyHasher>): Readable {
  return Readable.from(
    (async function* () {
      if (head.length) yield head;
      for await (const chunk of openBody(body) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        yield chunk;
      }
    })(),
  );
}

/**
 * Enforcement: DMARC reject (sampled by pct) and SPF hard fail without an
 * aligned DKIM pass are refused; DNS trouble is temporary, never a pass.
 * `random` is injectable so pct sampling is testable.
 */
export function authDecision(auth: AuthResults, { exempt = false, random = Math.random }: { exempt?: boolean; random?: () => number } = {}): Decision | null {
  if ([auth.spf, auth.dmarc, ...auth.dkim.split(",")].includes("temperror")) {
    return decision(reply(421, "4.7.0", "Temporary DNS failure while checking SPF, DKIM or DMARC, please try again later"), "auth_dns_error");
  }
  if (exempt) return null;
  if (auth.dmarc === "fail" && auth.dmarcPolicy === "reject" && random() * 100 < auth.dmarcPct) {
    return decision(reply(550, "5.7.1", `Rejected by the DMARC policy of ${auth.fromDomain}: the message fails SPF and DKIM alignment`), "dmarc_reject");
  }
  if (auth.spf === "fail" && !auth.alignedDkim) {
    return decision(reply(550, "5.7.23", "SPF validation failed: the sending host is not allowed to send for this sender's domain"), "spf_fail");
  }
  return null;
}

/** Authentication-Results claiming to be ours came from elsewhere: remove them (RFC 8601 §5). */
export function stripForgedResults(message: InboundMessage, hostname: string): InboundMessage {
  const ours = (f: { name: string; raw: string }) => f.name === "authentication-results" && authservId(f.raw) === hostname.toLowerCase();
  const head = editHeaders(message.head, message.head.length, (fields) => fields.filter((f) => !ours(f)));
  if (head === message.head) return message;
  const headerBlock = head.toString("utf8");
  return { ...message, head, headerBlock, headers: parseHeaderBlock(headerBlock) };
}

function authservId(raw: string): string {
  const value = raw.slice(raw.indexOf(":") + 1).replace(/\([^)]*\)/g, " ").trim();
  return (/^([^;\s]+)/.exec(value)?.[1] ?? "").toLowerCase();
}
