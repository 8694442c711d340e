// The mail log and its daily counts, as GET /api/v1/log and /stats show them.
import { UserError } from "../errors.ts";
import { eventJson } from "../service/json.ts";
import { storyOfEvent, storyText } from "../service/story.ts";
import { type EventFilter, listEvents } from "../store/events.ts";
import type { Event } from "../store/schema.ts";
import { dailySeries, STAT_CATEGORIES } from "../store/stats.ts";
import { withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

const VERDICTS: readonly NonNullable<EventFilter["verdict"]>[] = ["accepted", "deferred", "rejected"];
const DEFAULT_LIMIT = 50;
/** dailySeries makes one entry per day; a year (and a day) is what the dashboard and API offer too. */
const MAX_DAYS = 366;

/** `log [--domain D] [--recipient R] [--sender S] [--verdict V] [--since YYYY-MM-DD] [--limit N]`: newest first. */
export async function logCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args[0] === "show") return logShow(ctx);
  if (ctx.args.length) throw new UsageError("usage: mailferry log [--domain D] [--recipient R] [--sender S] [--verdict accepted|deferred|rejected] [--since YYYY-MM-DD] [--limit N] [--json]");
  const filter = logFilter(ctx.options);
  const events = await withStore(ctx, (s) => listEvents(s.db, filter));
  if (ctx.json) ctx.io.out(JSON.stringify(events.map(eventJson)));
  else ctx.io.out(events.length ? events.map(describe).join("\n") : "(no events)");
  return 0;
}

/** `log show <id> [--json]`: the story of the event's message, in words. */
async function logShow(ctx: CommandContext): Promise<number> {
  const id = ctx.args[1] ?? "";
  if (ctx.args.length !== 2 || !/^\d+$/.test(id)) throw new UsageError("usage: mailferry log show <event id> [--json]");
  const story = await withStore(ctx, (s) => storyOfEvent(s.db, Number(id)));
  if (!story) throw new UserError("not_found", `no event ${id} (it may have expired)`);
  if (ctx.json) ctx.io.out(JSON.stringify({ event: eventJson(story.event), steps: story.steps }));
  else ctx.io.out(`${story.event.subject ? `"${story.event.subject}" ` : ""}session ${story.event.session_id}\n\n${storyText(story.steps)}`);
  return 0;
}

/** `stats [--days N] [--domain D]`: counts per day (UTC) and category. */
export async function statsCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.length) throw new UsageError("usage: mailferry stats [--days N] [--domain D] [--json]");
  const days = ctx.options.days === undefined ? 30 : positiveInt("--days", ctx.options.days);
  if (days > MAX_DAYS) throw new UsageError(`--days takes at most ${MAX_DAYS}`);
  const stats = await withStore(ctx, (s) => dailySeries(s.db, days, ctx.options.domain?.toLowerCase()));
  if (ctx.json) {
    ctx.io.out(JSON.stringify(stats));
    return 0;
  }
  const row = (first: string, cells: (string | number)[]) => [first.padEnd(10), ...cells.map((c, i) => String(c).padStart(STAT_CATEGORIES[i]!.length))].join("  ");
  ctx.io.out(row("day", [...STAT_CATEGORIES]));
  stats.days.forEach((day, i) => ctx.io.out(row(day, STAT_CATEGORIES.map((c) => stats.series[c][i]!))));
  ctx.io.out(row("total", STAT_CATEGORIES.map((c) => stats.series[c].reduce((a, b) => a + b, 0))));
  return 0;
}

function logFilter(options: CommandContext["options"]): EventFilter {
  const { domain, recipient, sender, verdict, since, limit } = options;
  if (verdict !== undefined && !VERDICTS.includes(verdict as (typeof VERDICTS)[number])) throw new UsageError(`--verdict takes ${VERDICTS.join(", ")}`);
  return {
    ...(domain ? { domain: domain.toLowerCase() } : {}),
    ...(recipient ? { recipient } : {}),
    ...(sender ? { sender } : {}),
    ...(verdict ? { verdict: verdict as EventFilter["verdict"] } : {}),
    ...(since ? { since: startOfDay(since) } : {}),
    limit: limit === undefined ? DEFAULT_LIMIT : positiveInt("--limit", limit),
  };
}

function positiveInt(option: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : 0;
  if (n < 1) throw new UsageError(`${option} takes a whole number of at least 1`);
  return n;
}

/** Midnight UTC of a YYYY-MM-DD date, in milliseconds. */
function startOfDay(date: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(date) ? Date.parse(`${date}T00:00:00Z`) : NaN;
  if (Number.isNaN(ms)) throw new UsageError("--since takes a date as YYYY-MM-DD");
  return ms;
}

/** time, stage, the SMTP answer, the envelope sender (<> is the null sender) and the recipients. */
function describe(event: Event): string {
  const e = eventJson(event);
  const from = e.mail_from === null ? "-" : `<${e.mail_from}>`;
  return `${e.at}  ${e.stage.padEnd(8)}  ${e.code} ${e.enhanced} ${e.text}  from ${from}  to ${e.recipients.join(", ") || "-"}`;
}
