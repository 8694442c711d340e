// Where alert notices go: e-mail to the admin addresses (queued in the outbox,
// which signs it), a webhook (JSON signed like the webhook recipients'
// requests, src/delivery/webhook.ts) and an ntfy-compatible topic URL.
import { randomUUID } from "node:crypto";
import MailComposer from "nodemailer/lib/mail-composer";
import type { Resolver } from "../dns/resolver.ts";
import type { Logger } from "../log.ts";
import { isPrivateAddress, literalHost } from "../net/ssrf.ts";
import { signature } from "../delivery/webhook.ts";
import { VERSION } from "../version.ts";
import type { Notice } from "./decide.ts";

export interface AlertChannels {
  email: string[];
  webhookUrl: string | null;
  ntfyUrl: string | null;
}

export interface ChannelDeps {
  channels: AlertChannels;
  hostname: string;
  queueMail: (to: string, raw: Buffer) => Promise<unknown>;
  resolver: Resolver;
  /** webhooks.allow_private: URLs on loopback, private or link-local addresses are refused without it. */
  allowPrivate: boolean;
  webhookKey: string;
  timeoutMs: number;
  logger: Logger;
  now?: () => Date;
}

const HEADLINE: Record<Notice["kind"], string> = { started: "Alert", repeated: "Still alerting", resolved: "Resolved" };

export function noticeSubject(notice: Notice): string {
  return `${HEADLINE[notice.kind]}: ${notice.alert.title}`;
}

function noticeText(notice: Notice, hostname: string): string {
  const since = new Date(notice.alert.startedAt).toISOString();
  const state = notice.kind === "resolved" ? `This alert, raised ${since}, has ended.` : `This alert has lasted since ${since}; it is repeated daily while it lasts.`;
  return [notice.alert.detail, "", state, "", `-- mailferry at ${hostname} (docs/operations.md, "Alerts")`].join("\n");
}

function alertMail(notice: Notice, to: string, deps: ChannelDeps): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: `mailferry at ${deps.hostname}`, address: `postmaster@${deps.hostname}` },
    to,
    subject: `[mailferry] ${noticeSubject(notice)}`,
    text: noticeText(notice, deps.hostname),
    date: deps.now?.() ?? new Date(),
    messageId: `<${randomUUID()}@${deps.hostname}>`,
    headers: { "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All" },
  });
  return mail.compile().build();
}

/** Why the URL may not be posted to (it resolves to a private address and that is not allowed), or null. */
async function privateTarget(url: URL, deps: ChannelDeps): Promise<string | null> {
  if (deps.allowPrivate) return null;
  const literal = literalHost(url);
  const addresses = literal ? [literal] : (await Promise.all((["A", "AAAA"] as const).map((t) => deps.resolver.resolve(url.hostname, t).catch(() => [] as string[])))).flat();
  const hit = addresses.find(isPrivateAddress);
  return hit ? `${url.host} resolves to a private address (${hit}); set webhooks.allow_private to allow it` : null;
}

// The URLs are the admin's own settings, not a sender's or API client's, so the
// address is checked once and the request made by name.
async function post(url: string, body: string, headers: Record<string, string>, deps: ChannelDeps): Promise<void> {
  const problem = await privateTarget(new URL(url), deps);
  if (problem) throw new Error(problem);
  const res = await fetch(url, { method: "POST", body, headers: { "user-agent": `mailferry/${VERSION}`, ...headers }, signal: AbortSignal.timeout(deps.timeoutMs) });
  if (!res.ok) throw new Error(`${new URL(url).host} answered HTTP ${res.status}`);
}

function webhookBody(notice: Notice, hostname: string, at: Date): string {
  const { key, kind, title, detail, startedAt } = notice.alert;
  return JSON.stringify({ event: `alert.${notice.kind}`, key, kind, title, detail, started_at: new Date(startedAt).toISOString(), at: at.toISOString(), hostname });
}

// ntfy reads Title and Priority from headers (https://docs.ntfy.sh/publish/); header values stay ASCII.
const ascii = (s: string) => s.replace(/[^\x20-\x7e]/g, "?");

/** Sends a notice on every configured channel; a failing channel is logged and does not stop the others. */
export async function sendNotice(notice: Notice, deps: ChannelDeps): Promise<void> {
  const at = deps.now?.() ?? new Date();
  const { email, webhookUrl, ntfyUrl } = deps.channels;
  const sends: [string, () => Promise<void>][] = email.map((to) => [`email ${to}`, async () => void (await deps.queueMail(to, await alertMail(notice, to, deps)))]);
  if (webhookUrl) {
    const body = webhookBody(notice, deps.hostname, at);
    sends.push(["webhook", () => post(webhookUrl, body, { "content-type": "application/json", "x-webhook-signature": signature(body, deps.webhookKey) }, deps)]);
  }
  if (ntfyUrl) {
    const headers = { "content-type": "text/plain; charset=utf-8", title: ascii(`mailferry ${noticeSubject(notice)}`), priority: notice.kind === "resolved" ? "default" : "high", tags: notice.kind === "resolved" ? "white_check_mark" : "warning" };
    sends.push(["ntfy", () => post(ntfyUrl, noticeText(notice, deps.hostname), headers, deps)]);
  }
  await Promise.all(
    sends.map(([channel, send]) =>
      send().then(
        () => deps.logger.info("alert.sent", { key: notice.alert.key, notice: notice.kind, channel }),
        (err) => deps.logger.warn("alert.not_sent", { key: notice.alert.key, notice: notice.kind, channel, error: err }),
      ),
    ),
  );
}
