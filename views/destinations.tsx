/** @jsxImportSource hono/jsx */
// Forwarding destinations outside the managed domains and their verification.
import type { FC } from "hono/jsx";
import { Csrf, Field, type FieldErrors, Flash, Page, PostButton, when } from "./layout.tsx";

export interface DestinationRow {
  address: string;
  status: "pending" | "verified";
  created_at: number;
  verified_at: number | null;
  last_sent_at: number | null;
}

export const DestinationsPage: FC<{ user: string; csrf: string; rows: DestinationRow[]; verifying: boolean; values?: Record<string, string>; errors?: FieldErrors; ok?: string | null }> = (p) => (
  <Page title="Destinations" section="/destinations" user={p.user} csrf={p.csrf}>
    <h1>Destinations</h1>
    <Flash ok={p.ok} />
    <p class="muted">
      {p.verifying
        ? "Addresses outside your domains receive forwarded mail only after their owner confirmed the link mailed to them (valid 24 hours). Until then, mail for an alias with no verified destination is answered 450, so senders retry."
        : "Verification is off (delivery.verify_destinations = false): every destination receives mail."}
    </p>
    <section class="panel">
      <form method="post" action="/destinations">
        <Csrf token={p.csrf} />
        <div class="row">
          <Field label="Address" name="address" value={p.values?.address} errors={p.errors} placeholder="me@gmail.com" />
          <div>
            <button type="submit">Add and send verification</button>
          </div>
        </div>
      </form>
    </section>
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Address</th>
            <th>Status</th>
            <th>Added</th>
            <th>Last mail</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {p.rows.length === 0 && (
            <tr>
              <td class="muted" colspan={5}>
                No destinations yet: they are added with aliases, or here.
              </td>
            </tr>
          )}
          {p.rows.map((d) => (
            <tr>
              <td class="mono">{d.address}</td>
              <td>{d.status === "verified" ? <span class="ok">✓ verified {when(d.verified_at!)}</span> : <span class="warn">waiting for confirmation</span>}</td>
              <td>{when(d.created_at)}</td>
              <td>{d.last_sent_at ? when(d.last_sent_at) : <span class="muted">—</span>}</td>
              <td>
                {d.status === "pending" && <PostButton action="/destinations/resend" csrf={p.csrf} name="address" value={d.address} label="Resend" harmless />}{" "}
                <PostButton action="/destinations/remove" csrf={p.csrf} name="address" value={d.address} label="Remove" />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  </Page>
);
