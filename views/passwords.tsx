/** @jsxImportSource hono/jsx */
// App passwords (docs/send-as.md): for sending as an alias through the
// submission port; the secret is shown once, then only its use.
import type { FC } from "hono/jsx";
import { Csrf, Field, type FieldErrors, Flash, Page, PostButton, when } from "./layout.tsx";

export interface PasswordRow {
  id: number;
  name: string;
  kind: "address" | "domain";
  identity: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface PasswordsPageProps {
  user: string;
  csrf: string;
  rows: PasswordRow[];
  /** A password just created: shown this once. */
  created?: { row: PasswordRow; password: string } | null;
  /** The submission port people set in their mail app, or null while submission is off. */
  port: number | null;
  hostname: string;
  values?: Record<string, string>;
  errors?: FieldErrors;
  ok?: string | null;
}

const sendAs = (r: PasswordRow) => (r.kind === "address" ? r.identity : `any address at ${r.identity}`);

const PasswordTable: FC<{ rows: PasswordRow[]; csrf: string }> = ({ rows, csrf }) => (
  <div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th>Name</th>
          <th>Sends as</th>
          <th>Created</th>
          <th>Last used</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 && (
          <tr>
            <td class="muted" colspan={5}>
              No app passwords yet.
            </td>
          </tr>
        )}
        {rows.map((r) => (
          <tr>
            <td>{r.name}</td>
            <td class="mono">{sendAs(r)}</td>
            <td>{when(r.created_at)}</td>
            <td>{r.last_used_at ? when(r.last_used_at) : <span class="muted">never</span>}</td>
            <td>{r.revoked_at ? <span class="muted">revoked {when(r.revoked_at)}</span> : <PostButton action="/passwords/revoke" csrf={csrf} name="id" value={r.id} label="Revoke" />}</td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

export const PasswordsPage: FC<PasswordsPageProps> = (p) => (
  <Page title="App passwords" section="/passwords" user={p.user} csrf={p.csrf}>
    <h1>App passwords</h1>
    <Flash ok={p.ok} />
    {p.created && (
      <div class="flash ok" role="status">
        <p>
          App password <strong>{p.created.row.name}</strong> for <span class="mono">{sendAs(p.created.row)}</span> created. Copy it now: it is not shown again.
        </p>
        <pre id="new-password">{p.created.password}</pre>
      </div>
    )}
    <p class="muted">
      With an app password a mail app (Gmail's "Send mail as", Thunderbird, Apple Mail) sends as the alias: SMTP server <span class="mono">{p.hostname}</span>, port{" "}
      {p.port ?? 587} with TLS, user name the address, password the app password (docs/send-as.md).
      {p.port === null && <strong> Submission is off: set [submission] enabled = true and restart.</strong>}
    </p>
    <section class="panel">
      <PasswordTable rows={p.rows} csrf={p.csrf} />
      <form method="post" action="/passwords">
        <Csrf token={p.csrf} />
        <div class="row">
          <Field label="Address or domain" name="send_as" value={p.values?.send_as} errors={p.errors} placeholder="hello@example.com" maxlength={320} />
          <Field label="Name" name="name" value={p.values?.name} errors={p.errors} placeholder="Gmail" maxlength={64} />
          <div>
            <button type="submit">Create app password</button>
          </div>
        </div>
      </form>
    </section>
  </Page>
);
