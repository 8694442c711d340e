// Where alert notices go: e-mail to the admin addresses (queued in the outbox,
// which signs it), a webhook (JSON signed like the webhook recipients'
// requests, src/delivery/webhook.ts) and an ntfy-compatible topic URL.
import { randomUUID } from "node:crypto";
import MailComposer from "nodemailer/lib/mail-composer";
import type { Resolver } from "../dns/resolver.ts";
import type { Logger } from "../log.ts";
import { isPrivateAddress, literalHost } from "../net/ssrf.ts";
import { RETRYABLE_STATUS, signature } from "../delivery/webhook.ts";
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

function noticeSubject(notice: Notice): string {
  return `${HEADLINE[notice.kind]}: ${notice.alert.title}`;
}

/** What goes out on every channel: a notice about an alert, or the digest (digest.ts). */
export interface Announcement {
  /** Fields of the log lines saying whether it was sent. */
  log: Record<string, string>;
  subject: string;
  text: string;
  /** The webhook's JSON body, besides `at` and `hostname`. */
  json: Record<string, unknown>;
  /** ntfy priority high (else default) and its tag. */
  urgent: boolean;
  tag: string;
}

function noticeAnnouncement(notice: Notice, hostname: string): Announcement {
  const { key, kind, title, detail, startedAt } = notice.alert;
  const since = new Date(startedAt).toISOString();
  const state = notice.kind === "resolved" ? `This alert, raised ${since}, has ended.` : `This alert has lasted since ${since}; it is repeated daily while it lasts.`;
  return {
    log: { key, notice: notice.kind },
    subject: noticeSubject(notice),
    text: [detail, "", state, "", signOff(hostname)].join("\n"),
    json: { event: `alert.${notice.kind}`, key, kind, title, detail, started_at: since },
    urgent: notice.kind !== "resolved",
    tag: notice.kind === "resolved" ? "white_check_mark" : "warning",
  };
}

export const signOff = (hostname: string) => `-- mailferry at ${hostname} (docs/operations.md, "Alerts")`;

function announcementMail(a: Announcement, to: string, deps: ChannelDeps): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: `mailferry at ${deps.hostname}`, address: `postmaster@${deps.hostname}` },
    to,
    subject: `[mailferry] ${a.subject}`,
    text: a.text,
    date: deps.now?.() ?? new Date(),
    messageId: `<${randomUUID()}@${deps.hostname}>`,
    headers: { "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All" },
  });
  return mail.compile().build();
}

/** A failure a retry cannot mend: the URL is refused here, or the server refused the request itself. */
class PermanentFailure extends Error {}

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
  if (problem) throw new PermanentFailure(problem);
  const res = await fetch(url, { method: "POST", body, headers: { "user-agent": `mailferry/${VERSION}`, ...headers }, signal: AbortSignal.timeout(deps.timeoutMs) });
  if (res.ok) return;
  const failure = `${new URL(url).host} answered HTTP ${res.status}`;
  // Like the webhook recipients (src/delivery/webhook.ts): 5xx and a few 4xx are worth another try.
  throw res.status < 500 && !RETRYABLE_STATUS.has(res.status) ? new PermanentFailure(failure) : new Error(failure);
}

/** Tries per announcement on the webhook and ntfy channels; the e-mail channel retries through the outbox. */
export const POST_TRIES = 3;
const FIRST_RETRY_MS = 1000;

/** `post`, tried again after 1 s and 2 s when the failure may pass (no answer, a timeout, 5xx, 408, 429). */
async function postWithRetries(channel: string, url: string, body: string, headers: Record<string, string>, deps: ChannelDeps, log: Record<string, string>): Promise<void> {
  for (let tried = 1; ; tried++) {
    try {
      return await post(url, body, headers, deps);
    } catch (err) {
      if (err instanceof PermanentFailure || tried >= POST_TRIES) throw err;
      deps.logger.info("alert.retrying", { ...log, channel, tried, error: err });
      await Bun.sleep(FIRST_RETRY_MS * 2 ** (tried - 1));
    }
  }
}

// ntfy reads Title and Priority from headers (https://docs.ntfy.sh/publish/); header values stay ASCII.
const ascii = (s: string) => s.replace(/[^\x20-\x7e]/g, "?");

/** Sends an announcement on every configured channel; a failing channel is logged and does not stop the others. */
export async function announce(a: Announcement, deps: ChannelDeps): Promise<void> {
  const at = deps.now?.() ?? new Date();
  const { email, webhookUrl, ntfyUrl } = deps.channels;
  const sends: [string, () => Promise<void>][] = email.map((to) => [`email ${to}`, async () => void (await deps.queueMail(to, await announcementMail(a, to, deps)))]);
  if (webhookUrl) {
    const body = JSON.stringify({ ...a.json, at: at.toISOString(), hostname: deps.hostname });
    sends.push(["webhook", () => postWithRetries("webhook", webhookUrl, body, { "content-type": "application/json", "x-webhook-signature": signature(body, deps.webhookKey) }, deps, a.log)]);
  }
  if (ntfyUrl) {
    const headers = { "content-type": "text/plain; charset=utf-8", title: ascii(`mailferry ${a.subject}`), priority: a.urgent ? "high" : "default", tags: a.tag };
    sends.push(["ntfy", () => postWithRetries("ntfy", ntfyUrl, a.text, headers, deps, a.log)]);
  }
  await Promise.all(
    sends.map(([channel, send]) =>
      send().then(
        () => deps.logger.info("alert.sent", { ...a.log, channel }),
        (err) => deps.logger.warn("alert.not_sent", { ...a.log, channel, error: err }),
      ),
    ),
  );
}

/** Sends a notice about an alert on every configured channel. */
export const sendNotice = (notice: Notice, deps: ChannelDeps) => announce(noticeAnnouncement(notice, deps.hostname), deps);
