/** @jsxImportSource hono/jsx */
// The outbound queue (docs/delivery-and-authentication.md, "Outbound queue"):
// each waiting message with its recipients' state, retry now and delete.
import type { FC } from "hono/jsx";
import { Csrf, Flash, Page, when } from "./layout.tsx";

export interface QueueRow {
  id: number;
  mail_from: string;
  submitter: string | null;
  attempts: number;
  next_attempt: number;
  last_error: string | null;
  created_at: number;
  recipients: { address: string; status: "pending" | "delivered" | "failed"; reply: { code: number; enhanced: string; text: string } | null }[];
}

const STATE = { pending: "warn", delivered: "ok", failed: "bad" } as const;

/** One message; htmx swaps it in place after retry (updated) or delete (gone). */
export const QueueMessageRow: FC<{ row: QueueRow; csrf: string }> = ({ row, csrf }) => (
  <tr id={`queue-${row.id}`}>
    <td class="mono">{row.id}</td>
    <td class="mono">{row.mail_from === "" ? "<>" : row.mail_from}</td>
    <td>
      {row.recipients.map((r) => (
        <div>
          <span class="mono">{r.address}</span> <span class={STATE[r.status]}>{r.status}</span>
          {r.reply && <span class="muted"> {`${r.reply.code} ${r.reply.enhanced} ${r.reply.text}`}</span>}
        </div>
      ))}
    </td>
    <td>{when(row.created_at)}</td>
    <td>{row.attempts}</td>
    <td>{when(row.next_attempt)}</td>
    <td>
      <form class="inline" method="post" action={`/queue/${row.id}/retry`} hx-post={`/queue/${row.id}/retry`} hx-target={`#queue-${row.id}`} hx-swap="outerHTML">
        <Csrf token={csrf} />
        <button class="secondary small" type="submit">
          Retry now
        </button>
      </form>{" "}
      <form class="inline" method="post" action={`/queue/${row.id}/delete`} hx-post={`/queue/${row.id}/delete`} hx-target={`#queue-${row.id}`} hx-swap="outerHTML" hx-confirm={`Delete message ${row.id} unsent? Its sender gets no DSN.`}>
        <Csrf token={csrf} />
        <button class="danger small" type="submit">
          Delete
        </button>
      </form>
    </td>
  </tr>
);

export const QueuePage: FC<{ user: string; csrf: string; rows: QueueRow[]; ok?: string | null; bad?: string | null }> = (p) => (
  <Page title="Queue" section="/queue" user={p.user} csrf={p.csrf}>
    <h1>Outbound queue</h1>
    <Flash ok={p.ok} bad={p.bad} />
    <p class="muted">
      Mail waiting to leave: messages sent through the submission port, DSNs, vacation replies, verification and alert mails. A destination that answers 4xx is tried again after 1, 5, 15 and 30 minutes, 1 and 2 hours, then every 4 hours for 5 days; the sender gets a notice after 4 hours and a DSN when a recipient fails for good.
    </p>
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Id</th>
            <th>From</th>
            <th>Recipients</th>
            <th>Queued</th>
            <th>Attempts</th>
            <th>Next attempt</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {p.rows.length === 0 && (
            <tr>
              <td class="muted" colspan={7}>
                The queue is empty: everything has left.
              </td>
            </tr>
          )}
          {p.rows.map((row) => (
            <QueueMessageRow row={row} csrf={p.csrf} />
          ))}
        </tbody>
      </table>
    </div>
  </Page>
);
