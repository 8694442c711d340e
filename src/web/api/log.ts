// /log and /stats: the mail log, paged newest first, and daily counts.
import { z } from "@hono/zod-openapi";
import { eventJson } from "../../service/json.ts";
import { storyOfEvent } from "../../service/story.ts";
import { eventById, listEvents } from "../../store/events.ts";
import { dailySeries } from "../../store/stats.ts";
import { type Api, ApiError, json, scopedRoute } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { EventBody, LogQuery, nextCursor, Stats, StatsQuery, Story } from "./schemas.ts";

const EventId = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) });

export function mountLogRoutes(api: Api, { db }: ApiDeps): void {
  api.openapi(
    scopedRoute({
      method: "get",
      path: "/log",
      tags: ["log"],
      summary: "Mail-log events, newest first",
      scope: "read",
      request: { query: LogQuery },
      responses: { 200: json(z.object({ items: z.array(EventBody), next_cursor: nextCursor }), "One page") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const rows = await listEvents(db, {
        ...(q.domain ? { domain: q.domain.toLowerCase() } : {}),
        ...(q.recipient ? { recipient: q.recipient } : {}),
        ...(q.sender ? { sender: q.sender } : {}),
        ...(q.verdict ? { verdict: q.verdict } : {}),
        ...(q.since ? { since: Date.parse(`${q.since}T00:00:00Z`) } : {}),
        ...(q.cursor ? { before: Number(q.cursor) } : {}),
        limit: q.limit + 1,
      });
      const items = rows.slice(0, q.limit);
      return c.json({ items: items.map(eventJson), next_cursor: rows.length > q.limit ? String(items.at(-1)!.id) : null }, 200);
    },
  );
  api.openapi(
    scopedRoute({
      method: "get",
      path: "/log/{id}",
      tags: ["log"],
      summary: "One event",
      scope: "read",
      extraErrors: [404],
      request: { params: EventId },
      responses: { 200: json(EventBody, "The event") },
    }),
    async (c) => {
      const event = await eventById(db, c.req.valid("param").id);
      if (!event) throw new ApiError(404, "not_found", "no such event (it may have expired)");
      return c.json(eventJson(event), 200);
    },
  );
  api.openapi(
    scopedRoute({
      method: "get",
      path: "/log/{id}/story",
      tags: ["log"],
      summary: "The story of the event's message: what happened, step by step, in words",
      scope: "read",
      extraErrors: [404],
      request: { params: EventId },
      responses: { 200: json(Story, "The steps, oldest first") },
    }),
    async (c) => {
      const story = await storyOfEvent(db, c.req.valid("param").id);
      if (!story) throw new ApiError(404, "not_found", "no such event (it may have expired)");
      return c.json({ session_id: story.event.session_id, steps: story.steps }, 200);
    },
  );
  api.openapi(
    scopedRoute({ method: "get", path: "/stats", tags: ["log"], summary: "Counts per day (UTC) and category", scope: "read", request: { query: StatsQuery }, responses: { 200: json(Stats, "One series per category") } }),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await dailySeries(db, q.days, q.domain?.toLowerCase()), 200);
    },
  );
}
