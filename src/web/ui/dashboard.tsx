/** @jsxImportSource hono/jsx */
// The dashboard: the alerts, 30 days of counts, the latest events and, until they were
// all done once, the "Getting started" steps.
import { Hono } from "hono";
import { listAlerts } from "../../store/alerts.ts";
import { countAliases } from "../../store/aliases.ts";
import { listDomains } from "../../store/domains.ts";
import { listEvents } from "../../store/events.ts";
import { dailySeries } from "../../store/stats.ts";
import { firstRunFacts, firstRunSteps } from "../../service/first-run.ts";
import { DashboardPage } from "../../../views/dashboard.tsx";
import type { Env } from "../session.ts";
import { csrfOf, liveChecks, type UiDeps, user } from "./common.ts";

export function dashboardRoutes(deps: UiDeps): Hono<Env> {
  const { db } = deps;
  return new Hono<Env>().get("/", async (c) => {
    const [data, events, domains, aliases, alerts] = await Promise.all([dailySeries(db, 30), listEvents(db, { limit: 20 }), listDomains(db), countAliases(db), listAlerts(db)]);
    const firstRun = await firstRunFacts(db, async (name) => (await liveChecks(deps, name)).ok);
    return c.html(<DashboardPage user={user(c)} csrf={csrfOf(c)} data={data} events={events} domains={domains.length} aliases={aliases} alerts={alerts.slice(0, 10)} firstRun={firstRun && firstRunSteps(firstRun)} />);
  });
}
