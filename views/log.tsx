/** @jsxImportSource hono/jsx */
// Mail log, deny/allow/greylist lists, audit log and settings pages.
import type { FC } from "hono/jsx";
import type { Badge, StoryStep } from "../src/service/story.ts";
import type { AuditEntry, Event } from "../src/store/schema.ts";
import { EventRows } from "./dashboard.tsx";
import { Csrf, Field, type FieldErrors, Flash, Page, PostButton, when } from "./layout.tsx";

export interface LogFilters {
  domain: string;
  alias: string;
  sender: string;
  verdict: string;
  since: string;
}

export const LogPage: FC<{ user: string; csrf: string; filters: LogFilters; events: Event[]; page: number; more: boolean; retentionDays: number }> = (p) => {
  const link = (page: number) => `/log?${new URLSearchParams({ ...p.filters, page: String(page) })}`;
  return (
    <Page title="Mail log" section="/log" user={p.user} csrf={p.csrf}>
      <h1>Mail log</h1>
      <p class="muted">Envelope, headers, authentication results and replies — never bodies. Kept {p.retentionDays} days.</p>
      <form class="panel row" method="get" action="/log">
        <Field label="Domain" name="domain" value={p.filters.domain} />
        <Field label="Recipient contains" name="alias" value={p.filters.alias} />
        <Field label="Sender contains" name="sender" value={p.filters.sender} />
        <div>
          <label for="f-verdict">Verdict</label>
          <select id="f-verdict" name="verdict">
            {["", "accepted", "deferred", "rejected"].map((v) => (
              <option value={v} selected={p.filters.verdict === v}>
                {v || "any"}
              </option>
            ))}
          </select>
        </div>
        <Field label="Since (date)" name="since" type="date" value={p.filters.since} />
        <div>
          <button type="submit" class="secondary">
            Filter
          </button>
        </div>
      </form>
      <section class="panel">
        <EventRows events={p.events} />
        <nav class="pager" aria-label="Pages">
          {p.page > 1 && <a href={link(p.page - 1)}>← Newer</a>}
          <span class="muted">Page {p.page}</span>
          {p.more && <a href={link(p.page + 1)}>Older →</a>}
        </nav>
      </section>
    </Page>
  );
};

const BADGE_MARK: Record<Badge, string> = { ok: "✓", fail: "✗", warn: "!", info: "·" };
const BADGE_CLASS: Record<Badge, string> = { ok: "ok", fail: "bad", warn: "warn", info: "muted" };

/** One step of the message's story: its badge, what happened in words, and the one-click fix when one fits. */
const StoryStepView: FC<{ step: StoryStep; csrf: string }> = ({ step, csrf }) => (
  <li class="story-step" data-badge={step.badge}>
    <h3>
      <span class={`badge ${BADGE_CLASS[step.badge]}`} aria-label={step.badge}>
        {BADGE_MARK[step.badge]}
      </span>{" "}
      {step.title}
    </h3>
    <ul>
      {step.lines.map((line) => (
        <li>{line}</li>
      ))}
    </ul>
    {step.action && <PostButton action={step.action.path} csrf={csrf} name={step.action.field} value={step.action.value} label={step.action.label} harmless />}
  </li>
);

export const EventPage: FC<{ user: string; csrf: string; event: Event; related: Event[]; story: StoryStep[] }> = ({ user, csrf, event, related, story }) => (
  <Page title={`Event ${event.id}`} section="/log" user={user} csrf={csrf}>
    <h1>{event.subject ? `“${event.subject}”` : `Session ${event.session_id}`}</h1>
    <p class="muted">
      {when(event.at)} · from <span class="mono">{event.mail_from ?? "(no sender yet)"}</span>
      {event.message_id && (
        <>
          {" "}
          · <span class="mono">{event.message_id}</span>
        </>
      )}
    </p>
    <section class="panel">
      <h2>What happened</h2>
      <ol class="story">
        {story.map((step) => (
          <StoryStepView step={step} csrf={csrf} />
        ))}
      </ol>
    </section>
    <details class="panel">
      <summary>Raw events and headers</summary>
      <EventRows events={related} />
      <pre>{JSON.stringify(event.detail ? JSON.parse(event.detail) : {}, null, 2)}</pre>
      {event.headers && <pre>{event.headers}</pre>}
    </details>
  </Page>
);

export interface ListsProps {
  user: string;
  csrf: string;
  deny: { kind: string; value: string; reason: string; source: string; expires_at: number | null }[];
  allow: { kind: string; value: string; note: string }[];
  greylist: { key: string; first_seen: number; passed_at: number | null; last_seen: number }[];
  errors?: FieldErrors;
  ok?: string | null;
}

export const ListsPage: FC<ListsProps> = (p) => (
  <Page title="Lists" section="/lists" user={p.user} csrf={p.csrf}>
    <h1>Deny, allow and greylist</h1>
    <Flash ok={p.ok} />
    <section class="panel">
      <h2>Denylist</h2>
      <p class="muted">Denied senders get 421 (never a bounce), so a mistake costs a delay, not mail.</p>
      <form method="post" action="/lists/deny" class="row">
        <Csrf token={p.csrf} />
        <Field label="IP, CIDR, domain or address" name="deny_value" errors={p.errors} required />
        <Field label="Reason" name="reason" errors={p.errors} maxlength={200} />
        <Field label="Expires after (e.g. 30d, empty: never)" name="expires" errors={p.errors} />
        <div>
          <button type="submit">Deny</button>
        </div>
      </form>
      <EntryTable rows={p.deny.map((d) => ({ value: d.value, kind: d.kind, note: [d.source, d.reason, d.expires_at ? `until ${when(d.expires_at)}` : ""].filter(Boolean).join(" · ") }))} action="/lists/deny/delete" csrf={p.csrf} />
    </section>
    <section class="panel">
      <h2>Allowlist</h2>
      <p class="muted">Allowlisted senders skip greylisting and rate limits, and SPF/DMARC refusal. Government, military and education domains are allowlisted by default.</p>
      <form method="post" action="/lists/allow" class="row">
        <Csrf token={p.csrf} />
        <Field label="IP, CIDR, domain or address" name="allow_value" errors={p.errors} required />
        <Field label="Note" name="note" errors={p.errors} maxlength={200} />
        <div>
          <button type="submit">Allow</button>
        </div>
      </form>
      <EntryTable rows={p.allow.map((a) => ({ value: a.value, kind: a.kind, note: a.note }))} action="/lists/allow/delete" csrf={p.csrf} />
    </section>
    <section class="panel">
      <h2>Greylist (latest 100)</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Sender → recipient domain</th>
              <th>First seen</th>
              <th>Passed</th>
              <th>Last seen</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {p.greylist.map((g) => (
              <tr>
                <td class="mono">{g.key.replace("|", " → ")}</td>
                <td>{when(g.first_seen)}</td>
                <td>{g.passed_at ? when(g.passed_at) : <span class="warn">waiting</span>}</td>
                <td>{when(g.last_seen)}</td>
                <td>
                  <PostButton action="/lists/greylist/delete" csrf={p.csrf} name="key" value={g.key} label="Forget" />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  </Page>
);

const EntryTable: FC<{ rows: { value: string; kind: string; note: string }[]; action: string; csrf: string }> = ({ rows, action, csrf }) => (
  <div class="table-wrap">
    <table>
      <tbody>
        {rows.length === 0 && (
          <tr>
            <td class="muted">empty</td>
          </tr>
        )}
        {rows.map((r) => (
          <tr>
            <td class="mono">{r.value}</td>
            <td>{r.kind}</td>
            <td class="muted">{r.note}</td>
            <td>
              <PostButton action={action} csrf={csrf} name="value" value={r.value} label="Remove" />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

export const AuditPage: FC<{ user: string; csrf: string; entries: AuditEntry[]; page: number; more: boolean }> = (p) => (
  <Page title="Audit log" section="/audit" user={p.user} csrf={p.csrf}>
    <h1>Audit log</h1>
    <section class="panel">
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>IP</th>
              <th>What</th>
              <th>Before → after</th>
            </tr>
          </thead>
          <tbody>
            {p.entries.map((e) => (
              <tr>
                <td class="mono">{when(e.at)}</td>
                <td>{e.actor}</td>
                <td class="mono">{e.ip}</td>
                <td>
                  {e.action} <span class="mono">{e.target}</span>
                </td>
                <td class="mono">
                  {e.before && <div class="bad">{e.before.slice(0, 300)}</div>}
                  {e.after && <div class="ok">{e.after.slice(0, 300)}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        {p.page > 1 && <a href={`/audit?page=${p.page - 1}`}>← Newer</a>}
        <span class="muted">Page {p.page}</span>
        {p.more && <a href={`/audit?page=${p.page + 1}`}>Older →</a>}
      </nav>
    </section>
  </Page>
);

/** A setting the settings page offers (declared with a form label in src/config/index.ts). */
export interface SettingField {
  key: string;
  label: string;
  hint: string;
  /** Never shown back; an empty field keeps the current value. */
  secret: boolean;
  /** Applies at once; otherwise after a restart. */
  live: boolean;
  /** This node's own (host name): kept in its config.toml even when the rest is shared in the database. */
  node: boolean;
}

export interface SettingsProps {
  user: string;
  csrf: string;
  fields: SettingField[];
  /** Effective values with secrets already masked. */
  effective: { key: string; shown: string; origin: string }[];
  values: Record<string, string>;
  errors?: FieldErrors;
  ok?: string | null;
  configFile: string;
  /** PostgreSQL: changes to all but node-local settings are kept in the database and apply on every node. */
  sharedInDatabase: boolean;
}

/** The field's hint, and what its declaration says about when it applies and whether it is shown back. */
function fieldHint(field: SettingField, sharedInDatabase: boolean): string {
  return [field.hint, sharedInDatabase && field.node ? "this node only" : "", field.live ? "" : "restart needed", field.secret ? "leave empty to keep the current one" : ""].filter(Boolean).join("; ");
}

export const SettingsPage: FC<SettingsProps> = (p) => (
  <Page title="Settings" section="/settings" user={p.user} csrf={p.csrf}>
    <h1>Settings</h1>
    <Flash ok={p.ok} />
    <form class="panel" method="post" action="/settings">
      <Csrf token={p.csrf} />
      <p class="muted">
        {p.sharedInDatabase ? (
          <>
            Saved to the database, for every node on it, except this node's own settings (marked this node only), saved to <code>{p.configFile}</code>. Applied at once on every node, except where it says restart needed. A value set by an environment variable or a flag wins over the database and the file.
          </>
        ) : (
          <>
            Saved to <code>{p.configFile}</code> and applied at once, except where it says restart needed. A value set by an environment variable or a flag wins over the file.
          </>
        )}
      </p>
      {p.fields.map((field) => (
        <Field label={field.label} name={field.key} type={field.secret ? "password" : "text"} value={field.secret ? "" : p.values[field.key]} hint={fieldHint(field, p.sharedInDatabase)} errors={p.errors} />
      ))}
      {p.errors?.form && (
        <div class="error" role="alert">
          {p.errors.form}
        </div>
      )}
      <p>
        <button type="submit">Save settings</button>
      </p>
    </form>
    <section class="panel">
      <h2>Effective configuration</h2>
      <div class="table-wrap">
        <table>
          <tbody>
            {p.effective.map((e) => (
              <tr>
                <td class="mono">{e.key}</td>
                <td class="mono">{e.shown || "(none)"}</td>
                <td class="muted">{e.origin}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  </Page>
);
