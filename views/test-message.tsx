/** @jsxImportSource hono/jsx */
// "Send a test message" for one alias: the button in its row, and the page
// with each destination's answer (src/service/test-message.ts sends it).
import type { FC } from "hono/jsx";
import type { AliasRule } from "../src/aliases/rules.ts";
import { aliasLabel, placeName } from "../src/aliases/rules.ts";
import type { TestOutcome, TestReport } from "../src/service/test-message.ts";
import { formatReply } from "../src/mail/reply.ts";
import { Csrf, Field, type FieldErrors, Flash, Page } from "./layout.tsx";

const path = (alias: AliasRule) => `/aliases/${alias.id}/test-message`;

/** An exact alias is tested at once; a catch-all or regex alias first needs an address to write to. */
export const TestMessageButton: FC<{ alias: AliasRule; csrf: string }> = ({ alias, csrf }) =>
  alias.matcher === "exact" ? (
    <form class="inline" method="post" action={path(alias)}>
      <Csrf token={csrf} />
      <button class="secondary small" type="submit">
        Send a test message
      </button>
    </form>
  ) : (
    <a class="button secondary small" href={path(alias)}>
      Send a test message…
    </a>
  );

const Mark: FC<{ outcome: TestOutcome }> = ({ outcome }) => {
  if (outcome.kind === "skipped") return <td class="muted">–</td>;
  const code = outcome.reply.code;
  return code < 400 ? <td class="ok">✓</td> : code < 500 ? <td class="warn">!</td> : <td class="bad">✗</td>;
};

const Outcome: FC<{ outcome: TestOutcome }> = ({ outcome }) => (
  <tr>
    <Mark outcome={outcome} />
    <td class="mono">{outcome.target}</td>
    {outcome.kind === "skipped" ? (
      <td colspan={2}>Not sent: {outcome.reason}</td>
    ) : (
      <>
        <td class="mono reply">{formatReply(outcome.reply)}</td>
        <td class="mono">{outcome.mx ? `${outcome.mx}${outcome.tls ? ` (${outcome.tls})` : " (no TLS)"}` : <span class="muted">no mail host answered: mailferry's own reason</span>}</td>
      </>
    )}
  </tr>
);

const Report: FC<{ report: TestReport }> = ({ report }) => (
  <section class="panel" id="test-report">
    <h2>Result</h2>
    {report.refused ? (
      <div class="flash bad" role="alert">
        Not sent: {report.refused}.
      </div>
    ) : (
      <p>
        <span class="mono">{report.subject}</span> from <span class="mono">{report.from}</span>,{" "}
        {report.signedBy ? `DKIM-signed by ${report.signedBy}` : <span class="warn">not DKIM-signed (no key covers {report.from})</span>}.
      </p>
    )}
    {report.outcomes.length > 0 && (
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th></th>
              <th>Destination</th>
              <th>Answer</th>
              <th>Answered by</th>
            </tr>
          </thead>
          <tbody>
            {report.outcomes.map((o) => (
              <Outcome outcome={o} />
            ))}
          </tbody>
        </table>
      </div>
    )}
  </section>
);

export const TestMessagePage: FC<{ user: string; csrf: string; alias: AliasRule; values?: Record<string, string>; report?: TestReport; errors?: FieldErrors }> = (p) => {
  const name = `${aliasLabel(p.alias)}@${placeName(p.alias)}`;
  return (
    <Page title="Send a test message" section="/aliases" user={p.user} csrf={p.csrf}>
      <h1>Send a test message to {name}</h1>
      <Flash bad={p.errors?.form} />
      <form class="panel" method="post" action={path(p.alias)}>
        <Csrf token={p.csrf} />
        <p>
          mailferry writes a short message from <span class="mono">mailferry-test@{p.alias.domain}</span>, signs it with the domain's DKIM key, routes it through this alias
          and sends each copy the way it forwards mail. You see each destination's answer here (it is also in the mail log).
        </p>
        {p.alias.matcher !== "exact" && <Field label={`Address ${aliasLabel(p.alias)} matches`} name="address" value={p.values?.address ?? p.report?.address} errors={p.errors} placeholder={`someone@${placeName(p.alias)}`} required />}
        <p>
          <button type="submit">{p.report ? "Send another test message" : "Send a test message"}</button> <a href={`/aliases?domain=${p.alias.domain}`}>Back to aliases</a>
        </p>
      </form>
      {p.report && <Report report={p.report} />}
    </Page>
  );
};
