/** @jsxImportSource hono/jsx */
// /log: the mail log, filtered and paged, and one event told as the story of its
// message (src/service/story.ts), with the raw events of its SMTP session.
import { Hono } from "hono";
import { storyOfEvent } from "../../service/story.ts";
import { listEvents } from "../../store/events.ts";
import { EventPage, type LogFilters, LogPage } from "../../../views/log.tsx";
import type { Env } from "../session.ts";
import { csrfOf, PER_PAGE, pageOf, type UiDeps, user } from "./common.ts";

/** The store's filter for the form's fields (an unknown verdict or a malformed date filters nothing). */
function eventFilter(filters: LogFilters) {
  const since = /^\d{4}-\d{2}-\d{2}$/.test(filters.since) ? Date.parse(`${filters.since}T00:00:00Z`) : undefined;
  const verdict = ["accepted", "deferred", "rejected"].includes(filters.verdict) ? (filters.verdict as "accepted") : undefined;
  return {
    ...(filters.domain ? { domain: filters.domain.toLowerCase() } : {}),
    ...(filters.alias ? { recipient: filters.alias } : {}),
    ...(filters.sender ? { sender: filters.sender } : {}),
    ...(verdict ? { verdict } : {}),
    ...(since ? { since } : {}),
  };
}

export function logRoutes(deps: UiDeps): Hono<Env> {
  const { db } = deps;
  const routes = new Hono<Env>();
  routes.get("/", async (c) => {
    const filters: LogFilters = { domain: c.req.query("domain") ?? "", alias: c.req.query("alias") ?? "", sender: c.req.query("sender") ?? "", verdict: c.req.query("verdict") ?? "", since: c.req.query("since") ?? "" };
    const page = pageOf(c);
    const events = await listEvents(db, { ...eventFilter(filters), limit: PER_PAGE + 1, offset: (page - 1) * PER_PAGE });
    return c.html(<LogPage user={user(c)} csrf={csrfOf(c)} filters={filters} events={events.slice(0, PER_PAGE)} page={page} more={events.length > PER_PAGE} retentionDays={Math.round(deps.config.log.retention / 86_400_000)} />);
  });
  routes.get("/:id", async (c) => {
    const story = await storyOfEvent(db, Number(c.req.param("id")));
    if (!story) return c.text("No such event (it may have expired)\n", 404);
    return c.html(<EventPage user={user(c)} csrf={csrfOf(c)} event={story.event} related={story.session} story={story.steps} />);
  });
  return routes;
}
