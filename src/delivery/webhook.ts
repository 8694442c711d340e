// Webhook recipients (docs/aliases.md, "Webhooks"): one signed JSON POST per URL per message,
// retried a few times within the session, answered to the SMTP sender with
// what the endpoint said.
import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { simpleParser } from "mailparser";
import type { AuthResults } from "../auth/inbound.ts";
import type { Resolver } from "../dns/resolver.ts";
import { type Reply, reply } from "../mail/reply.ts";
import type { Session } from "../smtp/session.ts";
import { VERSION } from "../version.ts";
import { isPrivateAddress, literalHost } from "../net/ssrf.ts";

/** Query parameters that slim the payload; they are removed before the request. */
const SLIMMING = { attachments: ["attachments"], raw: ["raw"], headers: ["headers", "headerLines"] } as const;

export interface WebhookMessage {
  raw: Buffer;
  auth: AuthResults;
  session: Session;
  hostname: string;
  arrival: Date;
}

/** The full payload of a message: mailparser's parse, raw, auth results and the SMTP session. */
export async function webhookPayload(m: WebhookMessage, recipients: string[]): Promise<Record<string, unknown>> {
  const parsed = await simpleParser(m.raw);
  const { headers, ...rest } = parsed;
  return {
    ...rest,
    headers: Object.fromEntries(headers),
    raw: m.raw.toString("utf8"),
    dkim: m.auth.detail.dkim,
    spf: m.auth.detail.spf,
    arc: m.auth.detail.arc,
    dmarc: m.auth.detail.dmarc,
    bimi: m.auth.detail.bimi,
    recipients,
    session: {
      recipient: recipients[0],
      remoteAddress: m.session.remoteIp,
      remotePort: m.session.remotePort,
      clientHostname: m.session.clientHost ?? `[${m.session.remoteIp}]`,
      hostNameAppearsAs: m.session.helo,
      sender: m.session.mailFrom,
      mta: m.hostname,
      arrivalDate: m.arrival.toISOString(),
      arrivalTime: m.arrival.getTime(),
    },
  };
}

/** The URL without its slimming parameters, and the payload without the fields they remove. */
export function slimmed(url: string, payload: Record<string, unknown>): { url: string; payload: Record<string, unknown> } {
  const target = new URL(url);
  const out = { ...payload };
  for (const [param, fields] of Object.entries(SLIMMING)) {
    if (!target.searchParams.has(param)) continue;
    if (target.searchParams.get(param) === "false") for (const f of fields) delete out[f];
    target.searchParams.delete(param);
  }
  return { url: target.href, payload: out };
}

export function signature(body: string | Buffer, key: string): string {
  return createHmac("sha256", key).update(body).digest("hex");
}

export interface WebhookOptions {
  resolver: Resolver;
  timeoutMs: number;
  allowPrivate: boolean;
  retries?: number;
  backoffMs?: number;
}

export interface Attempt {
  status: number | null;
  error: string | null;
  /** The start of the response body, for the mail log. */
  excerpt: string;
}

export interface WebhookOutcome {
  reply: Reply;
  attempts: Attempt[];
}

const RETRYABLE = new Set([408, 413, 429]);
const EXCERPT = 300;

export async function postWebhook(rawUrl: string, payload: Record<string, unknown>, key: string, opts: WebhookOptions): Promise<WebhookOutcome> {
  const { url, payload: body } = slimmed(rawUrl, payload);
  const json = JSON.stringify(body);
  const target = new URL(url);
  const addresses = await addressesOf(target, opts.resolver);
  if ("refuse" in addresses) return { reply: addresses.refuse, attempts: [] };
  const privateOne = addresses.list.find(isPrivateAddress);
  if (privateOne && !opts.allowPrivate) {
    return { reply: reply(550, "5.7.1", `webhook ${target.host} resolves to a private address (${privateOne}); refused`), attempts: [] };
  }

  const attempts: Attempt[] = [];
  const retries = opts.retries ?? 3;
  for (let n = 0; n <= retries; n++) {
    if (n > 0) await Bun.sleep((opts.backoffMs ?? 500) * 2 ** (n - 1));
    const attempt = await request(target, addresses.list[0]!, json, signature(json, key), opts.timeoutMs);
    if (attempt.status !== null && attempt.status >= 200 && attempt.status < 300) return { reply: reply(250, "2.0.0", `webhook ${target.host} accepted (HTTP ${attempt.status})`), attempts };
    attempts.push(attempt);
    if (attempt.status !== null && attempt.status < 500 && !RETRYABLE.has(attempt.status)) {
      return { reply: reply(550, "5.0.0", `webhook ${target.host} answered HTTP ${attempt.status}`), attempts };
    }
  }
  const last = attempts[attempts.length - 1]!;
  const what = last.status !== null ? `answered HTTP ${last.status}` : `failed (${last.error})`;
  return { reply: reply(421, "4.4.0", `webhook ${target.host} ${what} after ${attempts.length} attempts; try again later`), attempts };
}

async function addressesOf(url: URL, resolver: Resolver): Promise<{ list: string[] } | { refuse: Reply }> {
  const literal = literalHost(url);
  if (literal) return { list: [literal] };
  const list: string[] = [];
  for (const type of ["A", "AAAA"] as const) list.push(...(await resolver.resolve(url.hostname, type).catch(() => [] as string[])));
  if (list.length === 0) return { refuse: reply(421, "4.4.3", `webhook host ${url.hostname} has no address (DNS), try again later`) };
  return { list };
}

/** One POST to the address we checked, with the URL's name for Host and TLS (so DNS cannot change it in between). */
function request(url: URL, address: string, body: string, sig: string, timeoutMs: number): Promise<Attempt> {
  const secure = url.protocol === "https:";
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Attempt) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(a);
      }
    };
    const req = (secure ? https : http).request(
      {
        host: address,
        port: url.port || (secure ? 443 : 80),
        path: url.pathname + url.search,
        method: "POST",
        servername: literalHost(url) ? undefined : url.hostname,
        headers: {
          host: url.host,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": `mailferry/${VERSION}`,
          "x-webhook-signature": sig,
        },
      },
      (res) => {
        let excerpt = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (excerpt.length < EXCERPT) excerpt += chunk.slice(0, EXCERPT - excerpt.length);
        });
        res.on("end", () => done({ status: res.statusCode ?? 0, error: null, excerpt }));
        res.on("error", (err) => done({ status: res.statusCode ?? null, error: err.message, excerpt }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done({ status: null, error: `timed out after ${timeoutMs} ms`, excerpt: "" });
    }, timeoutMs);
    req.on("error", (err) => done({ status: null, error: err.message, excerpt: "" }));
    req.end(body);
  });
}
