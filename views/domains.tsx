/** @jsxImportSource hono/jsx */
// Domains: the list, and one domain's DNS records (with live checks) and settings.
import type { FC } from "hono/jsx";
import { type KeyLifecycle, keyState, removableAfter } from "../src/mail/dkim-key.ts";
import { type DnsReport, mark, reportSummary } from "../src/auth/dns-check.ts";
import type { AddressDefaults, DomainSettings } from "../src/aliases/rules.ts";
import { Csrf, Field, type FieldErrors, Flash, Page, when } from "./layout.tsx";

export interface DomainRow {
  name: string;
  aliases: number;
  created_at: number;
}

export const DomainsPage: FC<{ user: string; csrf: string; domains: DomainRow[]; errors?: FieldErrors; name?: string; ok?: string | null }> = (p) => (
  <Page title="Domains" section="/domains" user={p.user} csrf={p.csrf}>
    <h1>Domains</h1>
    <Flash ok={p.ok} />
    <section class="panel">
      <h2>Add a domain</h2>
      <form method="post" action="/domains" class="row">
        <Csrf token={p.csrf} />
        <Field label="Domain name" name="name" value={p.name} errors={p.errors} placeholder="example.com" required />
        <div>
          <button type="submit">Add domain</button>
        </div>
      </form>
    </section>
    <section class="panel">
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Domain</th>
              <th class="num">Aliases</th>
              <th>Added</th>
            </tr>
          </thead>
          <tbody>
            {p.domains.length === 0 && (
              <tr>
                <td colspan={3} class="muted">
                  No domains yet.
                </td>
              </tr>
            )}
            {p.domains.map((d) => (
              <tr>
                <td>
                  <a href={`/domains/${d.name}`}>{d.name}</a>
                </td>
                <td class="num">{d.aliases}</td>
                <td>{when(d.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  </Page>
);

const MARK_CLASS = { "✓": "ok", "✗": "bad", "!": "warn" } as const;

/** The live DNS check (the same report as `mailferry dns check`): a table per domain and one for this server's host records. */
export const RecordChecks: FC<{ report: DnsReport; domain: string }> = ({ report, domain }) => (
  <div id="dns-records">
    {report.sections.map((section) => (
      <>
        <h3>{section.title}</h3>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th></th>
                <th>Name</th>
                <th>Type</th>
                <th>Value to publish</th>
                <th>Found</th>
              </tr>
            </thead>
            <tbody>
              {section.checks.map((c) => (
                <tr>
                  <td class={MARK_CLASS[mark(c)]} aria-label={`${c.status}, ${c.record.level}`}>
                    {mark(c)}
                  </td>
                  <td class="mono">{c.record.name}</td>
                  <td>{c.record.type}</td>
                  <td class="mono">
                    {c.record.value}
                    <div class="muted">
                      {c.record.purpose}
                      {c.record.level === "recommended" ? " (recommended)" : ""}
                    </div>
                  </td>
                  <td class="mono">
                    {c.found.length ? c.found.join("\n") : <span class="muted">{c.error ?? "nothing"}</span>}
                    {c.note && <div class={c.status === "ok" ? "muted" : MARK_CLASS[mark(c)]}>{c.note}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </>
    ))}
    <p>
      <strong class={report.ok ? "ok" : "bad"}>{reportSummary(report)}</strong>
    </p>
    <p>
      <button class="secondary" hx-get={`/domains/${domain}/check`} hx-target="#dns-records" hx-swap="outerHTML">
        Check again
      </button>{" "}
      <a href={`/domains/${domain}/zone`}>Download as zone file lines</a>
    </p>
  </div>
);

export interface DomainPageProps {
  user: string;
  csrf: string;
  name: string;
  settings: DomainSettings;
  defaults: AddressDefaults;
  report: DnsReport;
  webhookKey: string;
  /** Aliases on the domain: with none yet, adding one is the next step. */
  aliasCount?: number;
  dkim: ({ selector: string; created_at: number } & KeyLifecycle)[];
  errors?: FieldErrors;
  ok?: string | null;
}

/** Where a DKIM key is in its rotation. */
const DkimKeyStatus: FC<{ dkimKey: KeyLifecycle }> = ({ dkimKey: k }) => {
  switch (keyState(k)) {
    case "pending":
      return <span class="warn">pending: publish its record (above); it signs once DNS serves it</span>;
    case "signing":
      return <span class="ok">signing</span>;
    case "retired":
      return (
        <span class="muted">
          retired {when(k.retired_at!)}, still published; its record can be removed after {when(removableAfter(k)!)}
        </span>
      );
  }
};

/** A setting that follows the configuration until the domain sets its own. */
const FollowSelect: FC<{ label: string; name: string; value: boolean | null; fallback: boolean; on: string; off: string }> = (p) => (
  <label>
    {p.label}
    <select name={p.name}>
      <option value="default" selected={p.value === null}>
        Follow the configuration (now: {p.fallback ? p.on : p.off})
      </option>
      <option value="on" selected={p.value === true}>
        {p.on}
      </option>
      <option value="off" selected={p.value === false}>
        {p.off}
      </option>
    </select>
  </label>
);

export const DomainPage: FC<DomainPageProps> = (p) => (
  <Page title={p.name} section="/domains" user={p.user} csrf={p.csrf}>
    <h1>{p.name}</h1>
    <Flash ok={p.ok} />
    {p.aliasCount === 0 ? (
      <p id="next-step">
        Next: publish the records below at your DNS provider, then{" "}
        <a class="button small" href={`/aliases?domain=${p.name}`}>
          add an alias on {p.name}
        </a>
      </p>
    ) : (
      <p>
        <a href={`/aliases?domain=${p.name}`}>Aliases of {p.name}</a>
      </p>
    )}
    <section class="panel">
      <h2>DNS records to publish</h2>
      <RecordChecks report={p.report} domain={p.name} />
    </section>
    <section class="panel">
      <h2>Settings</h2>
      <form method="post" action={`/domains/${p.name}/settings`}>
        <Csrf token={p.csrf} />
        <label class="check">
          <input type="checkbox" name="catch_all" value="on" checked={p.settings.catchAll} /> Catch-all aliases apply
        </label>
        <label class="check">
          <input type="checkbox" name="scan_spam" value="on" checked={p.settings.scanSpam} /> Check messages with the spam scanner (when one is configured)
        </label>
        <div class="row">
          <Field label="Max targets per recipient" name="max_targets" type="number" value={p.settings.maxTargets} errors={p.errors} />
          <Field label="Delivery port (empty: default)" name="delivery_port" type="number" value={p.settings.deliveryPort} errors={p.errors} />
          <Field label="Random subdomain length" name="random_subdomain_length" type="number" value={p.settings.randomSubdomainLength} errors={p.errors} />
        </div>
        <div class="row">
          <FollowSelect
            label={`Subdomains (x@team.${p.name} uses these aliases; the API may create addresses on a named subdomain)`}
            name="accept_subdomains"
            value={p.settings.acceptSubdomains}
            fallback={p.defaults.subdomainMatch}
            on="accepted"
            off="refused"
          />
          <FollowSelect label="New addresses from the API get a random subdomain" name="random_subdomain" value={p.settings.randomSubdomain} fallback={p.defaults.randomSubdomain} on="yes" off="no" />
        </div>
        <p>
          <button type="submit">Save settings</button>
        </p>
      </form>
    </section>
    <section class="panel">
      <h2>Keys</h2>
      <p>
        Webhook signing key (<code>X-Webhook-Signature</code>): <code id="webhook-key">{p.webhookKey}</code>
      </p>
      <form class="inline" method="post" action={`/domains/${p.name}/webhook-key`}>
        <Csrf token={p.csrf} />
        <button class="secondary" type="submit">
          Rotate webhook key
        </button>
      </form>
      <h3>DKIM</h3>
      <ul>
        {p.dkim.map((k) => (
          <li>
            <code>{k.selector}</code> <DkimKeyStatus dkimKey={k} /> · {when(k.created_at)}
          </li>
        ))}
      </ul>
      {p.dkim.some((k) => keyState(k) === "pending") ? (
        <form class="inline" method="post" action={`/domains/${p.name}/dkim-activate`} hx-confirm="Sign with the pending key before DNS serves its record? Receivers cannot verify signatures until it does.">
          <Csrf token={p.csrf} />
          <button class="secondary" type="submit">
            Sign with the pending key now
          </button>
        </form>
      ) : (
        <form class="inline" method="post" action={`/domains/${p.name}/dkim-rotate`}>
          <Csrf token={p.csrf} />
          <button class="secondary" type="submit">
            Rotate DKIM key
          </button>
        </form>
      )}
    </section>
    <section class="panel">
      <h2>Remove</h2>
      <form method="post" action={`/domains/${p.name}/delete`} hx-confirm={`Remove ${p.name} and all its aliases?`}>
        <Csrf token={p.csrf} />
        <label class="check">
          <input type="checkbox" name="confirm" value="yes" required /> I understand that mail for {p.name} will be refused
        </label>
        <button class="danger" type="submit">
          Remove {p.name}
        </button>
      </form>
    </section>
  </Page>
);
