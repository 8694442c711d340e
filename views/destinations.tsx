/** @jsxImportSource hono/jsx */
// Forwarding destinations outside the managed domains and their verification.
import type { FC } from "hono/jsx";
import type { VerifyDestinations } from "../src/config/index.ts";
import { Csrf, Field, type FieldErrors, Flash, Page, PostButton, when } from "./layout.tsx";

export interface DestinationRow {
  address: string;
  status: "pending" | "verified";
  created_at: number;
  verified_at: number | null;
  last_sent_at: number | null;
  confirmed_by: string | null;
}

const MODES: Record<VerifyDestinations, string> = {
  tokens:
    "Addresses you add (here, with an alias, or with an admin-scope API token) are confirmed by that act. Addresses a write-scope API token adds receive forwarded mail only after their owner confirmed the verification mail: by replying to it, with its code below, or with its link (valid 24 hours). Until then mail for an alias with no confirmed destination is answered 450, so senders retry.",
  all: "Every address outside your domains receives forwarded mail only after its owner confirmed the verification mail: by replying to it, with its code below, or with its link (valid 24 hours). Until then mail for an alias with no confirmed destination is answered 450, so senders retry.",
  off: "Verification is off (delivery.verify_destinations = off): every destination receives mail.",
};

export const DestinationsPage: FC<{ user: string; csrf: string; rows: DestinationRow[]; verifying: VerifyDestinations; values?: Record<string, string>; errors?: FieldErrors; ok?: string | null }> = (p) => (
  <Page title="Destinations" section="/destinations" user={p.user} csrf={p.csrf}>
    <h1>Destinations</h1>
    <Flash ok={p.ok} />
    <p class="muted">{MODES[p.verifying]}</p>
    <section class="panel">
      <form method="post" action="/destinations">
        <Csrf token={p.csrf} />
        <div class="row">
          <Field label="Address" name="address" value={p.values?.address} errors={p.errors} placeholder="me@gmail.com" />
          <div>
            <button type="submit">{p.verifying === "all" ? "Add and send verification" : "Add"}</button>
          </div>
        </div>
      </form>
      <form method="post" action="/destinations/confirm" id="confirm-code">
        <Csrf token={p.csrf} />
        <div class="row">
          <Field label="Code from a verification mail" name="code" value={p.values?.code} errors={p.errors} placeholder="ABCD-EFGH-JKLM-NPQR" />
          <div>
            <button type="submit">Confirm</button>
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
              <td>{d.status === "verified" ? <span class="ok">✓ confirmed {when(d.verified_at!)}{d.confirmed_by ? ` (${d.confirmed_by})` : ""}</span> : <span class="warn">waiting for confirmation</span>}</td>
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
