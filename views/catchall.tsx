/** @jsxImportSource hono/jsx */
// The learning catch-all page: names suggested for refusal, refused and allowed
// again, each with its one-click answer (docs/aliases.md, "Learning catch-all").
import type { FC } from "hono/jsx";
import type { CatchAllName } from "../src/store/schema.ts";
import { Csrf, Field, type FieldErrors, Flash, Page, when } from "./layout.tsx";

const STATE: Record<CatchAllName["state"], [label: string, tone: string]> = {
  learning: ["learning", "muted"],
  suggested: ["suggested: only spam", "warn"],
  refused: ["refused (550)", "bad"],
  allowed: ["allowed again", "ok"],
};

/** A row's DOM id: the address as hex, so any local part makes a valid, unique id. */
const rowId = (row: Pick<CatchAllName, "name" | "domain">) => `catchall-${Buffer.from(`${row.name}@${row.domain}`).toString("hex")}`;

/** One button that answers for one name; htmx swaps the row for the name as it is then. */
const Answer: FC<{ row: CatchAllName; state: "refused" | "allowed"; label: string; csrf: string }> = ({ row, state, label, csrf }) => (
  <form class="inline" method="post" action={`/catch-all/${state === "refused" ? "refuse" : "allow"}`} hx-post={`/catch-all/${state === "refused" ? "refuse" : "allow"}`} hx-target={`#${rowId(row)}`} hx-swap="outerHTML">
    <Csrf token={csrf} />
    <input type="hidden" name="address" value={`${row.name}@${row.domain}`} />
    <button class={state === "refused" ? "danger small" : "secondary small"} type="submit">
      {label}
    </button>
  </form>
);

export const CatchAllRow: FC<{ row: CatchAllName; csrf: string }> = ({ row, csrf }) => {
  const [label, tone] = STATE[row.state];
  return (
    <tr id={rowId(row)}>
      <td class="mono">
        {row.name}@{row.domain}
      </td>
      <td>
        <span class={`badge ${tone}`}>{label}</span>
        {row.decided_by && <div class="muted">by {row.decided_by}</div>}
      </td>
      <td>
        {row.spam} spam, {row.good} good
      </td>
      <td>{when(row.last_seen)}</td>
      <td>
        {row.state !== "refused" && <Answer row={row} state="refused" label="Refuse this name" csrf={csrf} />}{" "}
        {row.state !== "allowed" && <Answer row={row} state="allowed" label="Allow again" csrf={csrf} />}
      </td>
    </tr>
  );
};

export const CatchAllPage: FC<{ user: string; csrf: string; names: CatchAllName[]; learn: string; threshold: number; ok?: string | null; errors?: FieldErrors }> = (p) => (
  <Page title="Catch-all" section="/catch-all" user={p.user} csrf={p.csrf}>
    <h1>Learning catch-all</h1>
    <Flash ok={p.ok} />
    <p class="muted">
      A name a catch-all accepts that gets {p.threshold} spam messages (rspamd, a DNSBL listing, failed authentication) and no good one is{" "}
      {p.learn === "apply" ? "refused with 550 5.1.1 at once" : p.learn === "suggest" ? "suggested here for refusal" : "not learned: catchall.learn is off"}. A name allowed again is never suggested again.
    </p>
    <section class="panel">
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>State</th>
              <th>Messages</th>
              <th>Last seen</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {p.names.length === 0 && (
              <tr>
                <td class="muted" colspan={5}>
                  No name suggested, refused or allowed yet.
                </td>
              </tr>
            )}
            {p.names.map((row) => (
              <CatchAllRow row={row} csrf={p.csrf} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
    <section class="panel">
      <h2>Refuse a name in advance</h2>
      <form method="post" action="/catch-all/refuse" class="row">
        <Csrf token={p.csrf} />
        <Field label="Address (name@domain)" name="address" errors={p.errors} required />
        <div>
          <button type="submit">Refuse</button>
        </div>
      </form>
    </section>
  </Page>
);
