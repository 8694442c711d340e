/** @jsxImportSource hono/jsx */
// Dashboard: alerts, 30 days of counts as a server-rendered SVG chart, totals, latest events.
import type { FC } from "hono/jsx";
import { refusedAddressOf } from "../src/alerts/triggers.ts";
import type { FirstRunStep } from "../src/service/first-run.ts";
import type { DaySeries } from "../src/store/stats.ts";
import type { Alert, Event, StatCategory } from "../src/store/schema.ts";
import { Page, when } from "./layout.tsx";

const COLORS: Record<StatCategory, string> = {
  forwarded: "#2da44e",
  rejected: "#cf222e",
  greylisted: "#9a6700",
  spam: "#8250df",
  bounced: "#bc4c00",
  webhook: "#1f6feb",
};

/** One polyline per category; the y axis scales to the busiest day. */
export const Chart: FC<{ data: DaySeries }> = ({ data }) => {
  const width = 720;
  const height = 200;
  const pad = { left: 36, right: 8, top: 10, bottom: 22 };
  const max = Math.max(1, ...Object.values(data.series).flat());
  const x = (i: number) => pad.left + (i * (width - pad.left - pad.right)) / Math.max(1, data.days.length - 1);
  const y = (v: number) => height - pad.bottom - (v * (height - pad.top - pad.bottom)) / max;
  return (
    <figure>
      <svg class="chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Mail per day over the last ${data.days.length} days`}>
        <line class="axis" x1={pad.left} y1={y(0)} x2={width - pad.right} y2={y(0)} />
        <line class="axis" x1={pad.left} y1={y(max)} x2={width - pad.right} y2={y(max)} />
        <text x={4} y={y(max) + 4}>
          {max}
        </text>
        <text x={4} y={y(0) + 4}>
          0
        </text>
        {/* A label each week, counted back from today so the last one is never crowded. */}
        {data.days.map((d, i) => ((data.days.length - 1 - i) % 7 === 0 ? <text x={x(i) - 14} y={height - 6}>{d.slice(5)}</text> : null))}
        {(Object.keys(COLORS) as StatCategory[]).map((c) => (
          <polyline fill="none" stroke={COLORS[c]} stroke-width="2" points={data.series[c].map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}>
            <title>{c}</title>
          </polyline>
        ))}
      </svg>
      <figcaption class="legend">
        {(Object.keys(COLORS) as StatCategory[]).map((c) => (
          <span style={`--c: ${COLORS[c]}`}>{c}</span>
        ))}
      </figcaption>
    </figure>
  );
};

export const EventRows: FC<{ events: Event[] }> = ({ events }) => (
  <div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th>When</th>
          <th>Stage</th>
          <th>From</th>
          <th>To</th>
          <th>Reply</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr>
            <td class="mono">
              <a href={`/log/${e.id}`}>{when(e.at)}</a>
            </td>
            <td>{e.stage}</td>
            <td class="mono">{e.mail_from ?? ""}</td>
            <td class="mono">{e.recipients ? (JSON.parse(e.recipients) as string[]).join(", ") : ""}</td>
            <td class={e.code >= 500 ? "bad" : e.code >= 400 ? "warn" : "ok"}>
              {e.code} {e.enhanced} {e.text}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

/** Alerts the server raised (docs/operations.md, "Alerts"): lasting ones first, then resolved ones. */
/** One click refuses a name spammers found: an alias of it, disabled (hard), through the aliases form (audited like any alias). */
const RefuseName: FC<{ address: string; csrf: string }> = ({ address, csrf }) => {
  const at = address.lastIndexOf("@");
  return (
    <form method="post" action="/aliases" class="inline">
      <input type="hidden" name="_csrf" value={csrf} />
      <input type="hidden" name="domain" value={address.slice(at + 1)} />
      <input type="hidden" name="name" value={address.slice(0, at)} />
      <input type="hidden" name="disabled" value="hard" />
      <input type="hidden" name="description" value="refused after an alert of much refused mail" />
      <button class="button small" type="submit">
        Refuse {address}
      </button>
    </form>
  );
};

export const AlertList: FC<{ alerts: Alert[]; csrf: string }> = ({ alerts, csrf }) => (
  <section class="panel" id="alerts">
    <h2>Alerts</h2>
    <ul class="steps">
      {alerts.map((a) => (
        <li class={a.resolved_at === null ? "alert" : "resolved"}>
          <span class={a.resolved_at === null ? "bad" : "ok"} aria-label={a.resolved_at === null ? "lasting" : "resolved"}>
            {a.resolved_at === null ? "!" : "✓"}
          </span>{" "}
          <strong>{a.title}</strong> <span class="muted">{a.resolved_at === null ? `since ${when(a.started_at)}` : `resolved ${when(a.resolved_at)}`}</span>
          <div class="muted">{a.detail}</div>
          {a.resolved_at === null && refusedAddressOf(a.key) && <RefuseName address={refusedAddressOf(a.key)!} csrf={csrf} />}
        </li>
      ))}
    </ul>
  </section>
);

/** The first day's steps until all are done: each done (✓), the next one, or later. */
export const GettingStarted: FC<{ steps: FirstRunStep[] }> = ({ steps }) => {
  const next = steps.findIndex((s) => !s.done);
  return (
    <section class="panel" id="getting-started">
      <h2>Getting started</h2>
      <ol class="steps">
        {steps.map((s, i) => (
          <li class={s.done ? "done" : i === next ? "next" : "later"}>
            <span class={s.done ? "ok" : "muted"} aria-label={s.done ? "done" : i === next ? "next" : "to do"}>
              {s.done ? "✓" : i === next ? "→" : "○"}
            </span>{" "}
            {i === next ? (
              <a class="button small" href={s.href}>
                {s.title}
              </a>
            ) : (
              <a href={s.href}>{s.title}</a>
            )}{" "}
            <span class="muted">{s.hint}</span>
          </li>
        ))}
      </ol>
    </section>
  );
};

export const DashboardPage: FC<{ user: string; csrf: string; data: DaySeries; events: Event[]; domains: number; aliases: number; alerts: Alert[]; firstRun?: FirstRunStep[] | null }> = (p) => {
  const totals = Object.fromEntries(Object.entries(p.data.series).map(([c, v]) => [c, v.reduce((a, b) => a + b, 0)])) as Record<StatCategory, number>;
  return (
    <Page title="Dashboard" section="/" user={p.user} csrf={p.csrf}>
      <h1>Dashboard</h1>
      {p.firstRun && <GettingStarted steps={p.firstRun} />}
      {p.alerts.length > 0 && <AlertList alerts={p.alerts} csrf={p.csrf} />}
      <div class="grid">
        {(Object.keys(COLORS) as StatCategory[]).map((c) => (
          <div class="panel">
            <div class="muted">{c} (30 days)</div>
            <div class="stat" id={`total-${c}`}>
              {totals[c]}
            </div>
          </div>
        ))}
        <div class="panel">
          <div class="muted">domains / aliases</div>
          <div class="stat">
            {p.domains} / {p.aliases}
          </div>
        </div>
      </div>
      <section class="panel">
        <h2>Last 30 days</h2>
        <Chart data={p.data} />
      </section>
      <section class="panel">
        <h2>Latest events</h2>
        <EventRows events={p.events} />
      </section>
    </Page>
  );
};
