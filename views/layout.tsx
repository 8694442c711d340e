/** @jsxImportSource hono/jsx */
// The page frame and small shared pieces of the admin UI.
import type { Child, FC } from "hono/jsx";

export interface PageProps {
  title: string;
  /** Current section, for the navigation. */
  section?: string;
  /** Logged-in admin; absent on set-up and login pages. */
  user?: string;
  csrf?: string;
  children?: Child;
}

const NAV: [href: string, label: string][] = [
  ["/", "Dashboard"],
  ["/domains", "Domains"],
  ["/aliases", "Aliases"],
  ["/destinations", "Destinations"],
  ["/log", "Mail log"],
  ["/queue", "Queue"],
  ["/lists", "Lists"],
  ["/catch-all", "Catch-all"],
  ["/audit", "Audit"],
  ["/settings", "Settings"],
  ["/passwords", "App passwords"],
  ["/api-access", "API"],
  ["/account", "Account"],
];

export const Page: FC<PageProps> = ({ title, section, user, csrf, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${title} · mailferry`}</title>
      <link rel="stylesheet" href="/static/style.css" />
      <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
      <script src="/static/htmx.min.js" defer></script>
    </head>
    {/* htmx sends the CSRF token with every request it makes from inside the body. */}
    <body hx-headers:inherited={csrf ? JSON.stringify({ "x-csrf-token": csrf }) : undefined}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      {user && (
        <header class="top">
          <nav aria-label="Main">
            <a class="brand" href="/">
              mailferry
            </a>
            {NAV.map(([href, label]) => (
              <a class="nav" href={href} aria-current={section === href ? "page" : undefined}>
                {label}
              </a>
            ))}
            <form method="post" action="/logout">
              <input type="hidden" name="_csrf" value={csrf} />
              <button class="secondary small" type="submit">
                Log out {user}
              </button>
            </form>
          </nav>
        </header>
      )}
      <main id="main">{children}</main>
    </body>
  </html>
);

/** The CSRF token as a hidden field: forms also work without JavaScript. */
export const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name="_csrf" value={token} />;

/** A one-button form that posts a single hidden value, e.g. "Remove" in a table row. */
export const PostButton: FC<{ action: string; csrf: string; name: string; value: string | number; label: string; harmless?: boolean }> = (p) => (
  <form class="inline" method="post" action={p.action}>
    <Csrf token={p.csrf} />
    <input type="hidden" name={p.name} value={String(p.value)} />
    <button class={p.harmless ? "secondary small" : "danger small"} type="submit">
      {p.label}
    </button>
  </form>
);

export type FieldErrors = Record<string, string | undefined>;

export const Field: FC<{ label: string; name: string; value?: string | number | null; type?: string; errors?: FieldErrors; hint?: string; required?: boolean; placeholder?: string; maxlength?: number }> = (p) => (
  <div>
    <label for={`f-${p.name}`}>{p.label}</label>
    <input
      id={`f-${p.name}`}
      name={p.name}
      type={p.type ?? "text"}
      value={p.value === null || p.value === undefined ? "" : String(p.value)}
      required={p.required}
      placeholder={p.placeholder}
      maxlength={p.maxlength}
      aria-invalid={p.errors?.[p.name] ? "true" : undefined}
      aria-describedby={p.errors?.[p.name] ? `e-${p.name}` : undefined}
    />
    {p.hint && <div class="muted">{p.hint}</div>}
    <FieldError name={p.name} errors={p.errors} />
  </div>
);

export const FieldError: FC<{ name: string; errors?: FieldErrors }> = ({ name, errors }) =>
  errors?.[name] ? (
    <div class="error" id={`e-${name}`} role="alert">
      {errors[name]}
    </div>
  ) : null;

export const Flash: FC<{ ok?: string | null; bad?: string | null }> = ({ ok, bad }) => (
  <>
    {ok && (
      <div class="flash ok" role="status">
        {ok}
      </div>
    )}
    {bad && (
      <div class="flash bad" role="alert">
        {bad}
      </div>
    )}
  </>
);

export function when(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
