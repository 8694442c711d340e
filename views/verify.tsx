/** @jsxImportSource hono/jsx */
// The page a verification link opens: it asks for a click (a POST), so mail
// scanners that fetch links do not confirm on the owner's behalf.
import type { FC } from "hono/jsx";
import { Flash, Page } from "./layout.tsx";

export const VerifyPage: FC<{ address: string; token: string }> = ({ address, token }) => (
  <Page title="Confirm forwarding">
    <div class="auth-box panel">
      <h1>Confirm forwarding</h1>
      <p>
        Mail forwarded by this server will be delivered to <strong>{address}</strong> once you confirm.
      </p>
      <form method="post" action={`/verify/${token}`}>
        <p>
          <button type="submit">Confirm</button>
        </p>
      </form>
      <p class="muted">If you did not expect this, close the page: nothing is forwarded to you.</p>
    </div>
  </Page>
);

export const VerifyDone: FC<{ address: string }> = ({ address }) => (
  <Page title="Forwarding confirmed">
    <div class="auth-box panel">
      <h1>Confirmed</h1>
      <Flash ok={`Mail will now be forwarded to ${address}.`} />
    </div>
  </Page>
);

export const VerifyFailed: FC<{ message: string }> = ({ message }) => (
  <Page title="Link not valid">
    <div class="auth-box panel">
      <h1>This link does not work</h1>
      <Flash bad={message} />
      <p class="muted">Ask the person who set up the forwarding to send a new verification mail.</p>
    </div>
  </Page>
);
