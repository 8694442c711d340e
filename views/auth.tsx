/** @jsxImportSource hono/jsx */
// Set-up (first admin), login and account (TOTP, sessions) pages.
import type { FC } from "hono/jsx";
import { Csrf, Field, type FieldErrors, Flash, Page, PostButton, when } from "./layout.tsx";

export const SetupPage: FC<{ token: string; errors?: FieldErrors; username?: string }> = ({ token, errors, username }) => (
  <Page title="Set up">
    <div class="auth-box panel">
      <h1>Welcome to mailferry</h1>
      <p class="muted">Create the first admin account. The password needs at least 12 characters.</p>
      <form method="post" action="/setup">
        <input type="hidden" name="token" value={token} />
        <Field label="User name" name="username" value={username ?? "admin"} errors={errors} required />
        <Field label="Password" name="password" type="password" errors={errors} required />
        <Field label="Password again" name="password2" type="password" errors={errors} required />
        <p>
          <button type="submit">Create admin</button>
        </p>
      </form>
    </div>
  </Page>
);

export const SetupLocked: FC = () => (
  <Page title="Set up">
    <div class="auth-box panel">
      <h1>Set-up link needed</h1>
      <p>
        This instance has no admin yet. Open the one-time set-up URL that <code>mailferry serve</code> printed when it started (
        <code>mailferry admin setup-url</code> on the server prints it again), or run <code>mailferry admin create &lt;name&gt;</code> there.
      </p>
    </div>
  </Page>
);

export const LoginPage: FC<{ error?: string | null; username?: string; askCode?: boolean }> = ({ error, username, askCode }) => (
  <Page title="Log in">
    <div class="auth-box panel">
      <h1>Log in</h1>
      <Flash bad={error} />
      <form method="post" action="/login">
        <Field label="User name" name="username" value={username} required />
        <Field label="Password" name="password" type="password" required />
        {askCode && <Field label="Authenticator code or recovery code" name="code" hint="Six digits from your authenticator app" />}
        <p>
          <button type="submit">Log in</button>
        </p>
      </form>
    </div>
  </Page>
);

export interface AccountProps {
  user: string;
  csrf: string;
  totpEnabled: boolean;
  /** While turning TOTP on: the secret and its otpauth URI as an SVG QR code. */
  pending?: { secret: string; uri: string; qrSvg: string } | null;
  recovery?: string[] | null;
  sessions: { id: string; ip: string; user_agent: string; created_at: number; last_seen: number }[];
  currentSession: string;
  errors?: FieldErrors;
  ok?: string | null;
}

export const AccountPage: FC<AccountProps> = (p) => (
  <Page title="Account" section="/account" user={p.user} csrf={p.csrf}>
    <h1>Account</h1>
    <Flash ok={p.ok} />
    <section class="panel">
      <h2>Two-factor authentication</h2>
      {p.recovery && (
        <div class="flash ok" role="status">
          <p>TOTP is on. Keep these recovery codes somewhere safe; each works once and they are not shown again:</p>
          <pre id="recovery-codes">{p.recovery.join("\n")}</pre>
        </div>
      )}
      {p.totpEnabled && !p.recovery && (
        <form method="post" action="/account/totp/disable">
          <Csrf token={p.csrf} />
          <p class="ok">TOTP is on.</p>
          <button class="danger" type="submit">
            Turn TOTP off
          </button>
        </form>
      )}
      {!p.totpEnabled && !p.pending && (
        <form method="post" action="/account/totp/start">
          <Csrf token={p.csrf} />
          <p class="muted">Protect this account with an authenticator app (TOTP).</p>
          <button type="submit">Set up TOTP</button>
        </form>
      )}
      {p.pending && (
        <form method="post" action="/account/totp/confirm">
          <Csrf token={p.csrf} />
          <p>Scan this code with your authenticator app, or enter the secret by hand, then type the code it shows.</p>
          <div style="max-width: 220px" dangerouslySetInnerHTML={{ __html: p.pending.qrSvg }} />
          <p>
            Secret: <code id="totp-secret">{p.pending.secret}</code>
          </p>
          <Field label="Code from the app" name="code" errors={p.errors} required />
          <button type="submit">Turn TOTP on</button>
        </form>
      )}
    </section>
    <section class="panel">
      <h2>Sessions</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Signed in</th>
              <th>Last seen</th>
              <th>IP</th>
              <th>Browser</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {p.sessions.map((s) => (
              <tr>
                <td>{when(s.created_at)}</td>
                <td>{when(s.last_seen)}</td>
                <td class="mono">{s.ip}</td>
                <td class="muted">{s.user_agent.slice(0, 60)}</td>
                <td>
                  {s.id === p.currentSession ? (
                    <span class="badge">this one</span>
                  ) : (
                    <PostButton action="/account/sessions/revoke" csrf={p.csrf} name="id" value={s.id} label="Revoke" />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  </Page>
);
