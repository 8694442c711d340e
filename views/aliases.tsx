/** @jsxImportSource hono/jsx */
// Aliases: search and paging, inline create/edit/delete, the "test an address"
// box, vacation replies and TXT import/export.
import type { FC } from "hono/jsx";
import type { AliasRule } from "../src/aliases/rules.ts";
import { aliasLabel, placeName } from "../src/aliases/rules.ts";
import { Csrf, Field, FieldError, type FieldErrors, Flash, Page } from "./layout.tsx";
import { TestMessageButton } from "./test-message.tsx";

export interface AliasListProps {
  user: string;
  csrf: string;
  domains: string[];
  domain: string | null;
  q: string;
  page: number;
  pages: number;
  total: number;
  aliases: AliasRule[];
  ok?: string | null;
  form?: { values: Record<string, string>; errors: FieldErrors };
}

const MODES = [
  ["", "enabled"],
  ["drop", "disabled: accept and discard (!)"],
  ["soft", "disabled: temporary refusal 421 (!!)"],
  ["hard", "disabled: refuse 550 (!!!)"],
] as const;

export const AliasRow: FC<{ alias: AliasRule; csrf: string }> = ({ alias, csrf }) => (
  <tr id={`alias-${alias.id}`}>
    <td class="mono">
      {aliasLabel(alias)}
      <div class="muted">@{placeName(alias)}</div>
    </td>
    <td class="mono">{alias.recipients.join(", ") || <span class="muted">(none)</span>}</td>
    <td>{alias.disabled ? <span class="badge warn">{alias.disabled}</span> : <span class="badge ok">enabled</span>}</td>
    <td>{alias.description}</td>
    <td>
      <button class="secondary small" hx-get={`/aliases/${alias.id}/edit`} hx-target={`#alias-${alias.id}`} hx-swap="outerHTML">
        Edit
      </button>{" "}
      <form class="inline" method="post" action={`/aliases/${alias.id}/delete`} hx-post={`/aliases/${alias.id}/delete`} hx-target={`#alias-${alias.id}`} hx-swap="outerHTML" hx-confirm={`Delete ${aliasLabel(alias)}?`}>
        <Csrf token={csrf} />
        <button class="danger small" type="submit">
          Delete
        </button>
      </form>{" "}
      <TestMessageButton alias={alias} csrf={csrf} />
    </td>
  </tr>
);

/** Recipients, mode and description of one alias, edited in its table row. */
export const AliasEditRow: FC<{ alias: AliasRule; csrf: string; values?: Record<string, string>; errors?: FieldErrors }> = ({ alias, csrf, values, errors }) => (
  <tr id={`alias-${alias.id}`}>
    <td colspan={5}>
      <form method="post" action={`/aliases/${alias.id}`} hx-post={`/aliases/${alias.id}`} hx-target={`#alias-${alias.id}`} hx-swap="outerHTML">
        <Csrf token={csrf} />
        <strong class="mono">
          {aliasLabel(alias)}@{placeName(alias)}
        </strong>
        <label for={`r-${alias.id}`}>Recipients (one per line)</label>
        <textarea id={`r-${alias.id}`} name="recipients">
          {values?.recipients ?? alias.recipients.join("\n")}
        </textarea>
        <FieldError name="recipients" errors={errors} />
        <div class="row">
          <div>
            <label for={`m-${alias.id}`}>State</label>
            <select id={`m-${alias.id}`} name="disabled">
              {MODES.map(([v, label]) => (
                <option value={v} selected={(values?.disabled ?? alias.disabled ?? "") === v}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <Field label="Description" name="description" value={values?.description ?? alias.description} errors={errors} maxlength={500} />
        </div>
        {alias.matcher === "exact" && (
          <p>
            <a href={`/aliases/${alias.id}/vacation`}>Vacation reply…</a>
          </p>
        )}
        <p>
          <button type="submit">Save</button>{" "}
          <a class="button secondary" href="/aliases" hx-get={`/aliases/${alias.id}/row`} hx-target={`#alias-${alias.id}`} hx-swap="outerHTML">
            Cancel
          </a>
        </p>
      </form>
    </td>
  </tr>
);

export const CreateForm: FC<{ csrf: string; domains: string[]; values?: Record<string, string>; errors?: FieldErrors }> = ({ csrf, domains, values = {}, errors }) => (
  <form id="create-alias" method="post" action="/aliases" hx-post="/aliases" hx-target="#create-alias" hx-swap="outerHTML">
    <Csrf token={csrf} />
    <div class="row">
      <div>
        <label for="c-domain">Domain</label>
        <select id="c-domain" name="domain">
          {domains.map((d) => (
            <option value={d} selected={values.domain === d}>
              {d}
            </option>
          ))}
        </select>
        <FieldError name="domain" errors={errors} />
      </div>
      <Field label="Name: local part, * (catch-all) or /regex/" name="name" value={values.name} errors={{ name: errors?.pattern ?? errors?.matcher ?? errors?.name }} placeholder="hello" required />
    </div>
    <label for="c-recipients">Recipients (one per line: addresses, domains or https:// webhooks)</label>
    <textarea id="c-recipients" name="recipients" placeholder="you@gmail.com">
      {values.recipients ?? ""}
    </textarea>
    <FieldError name="recipients" errors={errors} />
    <div class="row">
      <div>
        <label for="c-disabled">State</label>
        <select id="c-disabled" name="disabled">
          {MODES.map(([v, label]) => (
            <option value={v} selected={(values.disabled ?? "") === v}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <Field label="Description" name="description" value={values.description} errors={errors} maxlength={500} />
    </div>
    {errors?.form && (
      <div class="error" role="alert">
        {errors.form}
      </div>
    )}
    {values.created && (
      <div class="flash ok" role="status">
        {values.created}
      </div>
    )}
    {values.created_id && (
      <p id="next-step">
        Next: <a href={`/aliases/${values.created_id}/test-message`}>send a test message</a> through this alias.
      </p>
    )}
    <p>
      <button type="submit">Create alias</button>
    </p>
  </form>
);

export const AliasesPage: FC<AliasListProps> = (p) => {
  const link = (page: number) => `/aliases?${new URLSearchParams({ ...(p.domain ? { domain: p.domain } : {}), ...(p.q ? { q: p.q } : {}), page: String(page) })}`;
  return (
    <Page title="Aliases" section="/aliases" user={p.user} csrf={p.csrf}>
      <h1>Aliases</h1>
      <Flash ok={p.ok} />
      <section class="panel">
        <h2>Test an address</h2>
        <p class="muted">What would happen to mail for any address: the verdict of the rules, and each target with the alias that produced it.</p>
        <form method="get" action="/aliases/test" hx-get="/aliases/test" hx-target="#test-result" class="row">
          <Field label="Address" name="address" placeholder="hello+news@example.com" required />
          <div>
            <button type="submit">Test</button>
          </div>
        </form>
        <div id="test-result" aria-live="polite"></div>
      </section>
      <section class="panel">
        <h2>New alias</h2>
        {p.domains.length ? <CreateForm csrf={p.csrf} domains={p.domains} values={p.form?.values ?? (p.domain ? { domain: p.domain } : undefined)} errors={p.form?.errors} /> : <p>Add a domain first.</p>}
      </section>
      <section class="panel">
        <form method="get" action="/aliases" class="row">
          <div>
            <label for="f-domain">Domain</label>
            <select id="f-domain" name="domain">
              <option value="">all</option>
              {p.domains.map((d) => (
                <option value={d} selected={p.domain === d}>
                  {d}
                </option>
              ))}
            </select>
          </div>
          <Field label="Search" name="q" type="search" value={p.q} placeholder="name or recipient" />
          <div>
            <button type="submit" class="secondary">
              Filter
            </button>
          </div>
        </form>
        <p class="muted">
          {p.total} alias{p.total === 1 ? "" : "es"}
        </p>
        <div class="table-wrap">
          <table id="aliases">
            <thead>
              <tr>
                <th>Alias</th>
                <th>Recipients</th>
                <th>State</th>
                <th>Description</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {p.aliases.map((a) => (
                <AliasRow alias={a} csrf={p.csrf} />
              ))}
            </tbody>
          </table>
        </div>
        <nav class="pager" aria-label="Pages">
          {p.page > 1 && <a href={link(p.page - 1)}>← Previous</a>}
          <span class="muted">
            Page {p.page} of {Math.max(1, p.pages)}
          </span>
          {p.page < p.pages && <a href={link(p.page + 1)}>Next →</a>}
        </nav>
      </section>
      <section class="panel">
        <h2>Import and export (Forward Email TXT syntax)</h2>
        <ImportForm csrf={p.csrf} domains={p.domains} />
        {p.domain && (
          <p>
            <a href={`/aliases/export?domain=${p.domain}`}>Export {p.domain}</a>
          </p>
        )}
      </section>
    </Page>
  );
};

export interface ImportResultProps {
  csrf: string;
  domains: string[];
  values?: { domain: string; text: string; replace: boolean };
  result?: { applied: boolean; summary: string; errors: { line: number; column: number; token: string; message: string }[]; preview: string[] };
}

export const ImportForm: FC<ImportResultProps> = ({ csrf, domains, values, result }) => (
  <form id="import-form" method="post" action="/aliases/import" hx-post="/aliases/import" hx-target="#import-form" hx-swap="outerHTML">
    <Csrf token={csrf} />
    <div class="row">
      <div>
        <label for="i-domain">Into domain</label>
        <select id="i-domain" name="domain">
          {domains.map((d) => (
            <option value={d} selected={values?.domain === d}>
              {d}
            </option>
          ))}
        </select>
      </div>
      <label class="check">
        <input type="checkbox" name="replace" value="on" checked={values?.replace} /> Replace the domain's aliases
      </label>
    </div>
    <label for="i-text">TXT values, one per line</label>
    <textarea id="i-text" name="text" placeholder="forward-email=hello:you@gmail.com">
      {values?.text ?? ""}
    </textarea>
    {result && (
      <div id="import-result" class={result.errors.length ? "flash bad" : "flash ok"} role="status">
        <p>{result.summary}</p>
        {result.errors.length > 0 && (
          <ul>
            {result.errors.map((e) => (
              <li>
                line {e.line}, column {e.column}: <code>{e.token}</code> — {e.message}
              </li>
            ))}
          </ul>
        )}
        {result.preview.length > 0 && <pre>{result.preview.join("\n")}</pre>}
      </div>
    )}
    <p>
      <button type="submit" name="mode" value="preview" class="secondary">
        Preview
      </button>{" "}
      <button type="submit" name="mode" value="apply">
        Import
      </button>
    </p>
  </form>
);

export const VacationPage: FC<{ user: string; csrf: string; alias: AliasRule; values: Record<string, string>; errors?: FieldErrors; ok?: string | null }> = (p) => (
  <Page title="Vacation reply" section="/aliases" user={p.user} csrf={p.csrf}>
    <h1>
      Vacation reply for {p.alias.pattern}@{placeName(p.alias)}
    </h1>
    <Flash ok={p.ok} />
    <form class="panel" method="post" action={`/aliases/${p.alias.id}/vacation`}>
      <Csrf token={p.csrf} />
      <label class="check">
        <input type="checkbox" name="enabled" value="on" checked={p.values.enabled === "on"} /> Send vacation replies
      </label>
      <Field label="Subject (at most 100 characters)" name="subject" value={p.values.subject} errors={p.errors} maxlength={100} required />
      <label for="v-message">Message (plain text, at most 1000 characters)</label>
      <textarea id="v-message" name="message" maxlength={1000}>
        {p.values.message ?? ""}
      </textarea>
      <FieldError name="message" errors={p.errors} />
      <div class="row">
        <Field label="From (UTC date, optional)" name="start" type="date" value={p.values.start} errors={p.errors} />
        <Field label="Until (inclusive, optional)" name="end" type="date" value={p.values.end} errors={p.errors} />
      </div>
      <p>
        <button type="submit">Save</button> <a href="/aliases">Back to aliases</a>
      </p>
    </form>
  </Page>
);
