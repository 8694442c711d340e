// One ACME order by HTTP-01 with acme-client. Loaded only when an order is
// placed: acme-client takes about 0.4 s to load, which start-up should not pay.
import { Agent } from "node:https";
import { rootCertificates } from "node:tls";
import * as acme from "acme-client";

/** Bound on one request to the CA, so a hung connection cannot stall renewals. */
const REQUEST_TIMEOUT = 30_000;

// Retries are the manager's job (with its own growing delays); acme-client's
// built-in ones would hold a failing check for over a minute.
(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
// acme-client's retry handler turns an error without a response (connection refused,
// timeout) into a TypeError that hides it (publishlab/node-acme-client#101). This one
// runs first and passes such errors on without the request config that handler keys on.
acme.axios.interceptors.response.handlers?.unshift({
  fulfilled: (response) => response,
  rejected: (err: { response?: unknown; config?: { method?: string; url?: string }; message?: string; code?: string }) => {
    if (err?.response || !err?.config) return Promise.reject(err);
    const { method = "get", url } = err.config;
    return Promise.reject(Object.assign(new Error(`${method.toUpperCase()} ${url}: ${err.message}`), { code: err.code }));
  },
  synchronous: false,
  runWhen: null,
});

export interface OrderRequest {
  directoryUrl: string;
  accountKey: Buffer;
  email: string | null;
  /** The first is the common name. */
  names: string[];
  /** Extra CA (PEM) trusted for the directory's HTTPS (acme.ca_file). */
  ca: string | null;
  /** Where pending HTTP-01 tokens and their key authorizations go, for the challenge listener to answer from. */
  challenges: ChallengeStore;
}

export interface ChallengeStore {
  set(token: string, keyAuthorization: string): Promise<void>;
  delete(token: string): Promise<void>;
}

/** A new private key and its certificate chain (PEM). */
export async function orderCertificate({ directoryUrl, accountKey, email, names, ca, challenges }: OrderRequest): Promise<{ key: Buffer; cert: Buffer }> {
  // Only requests to this CA trust acme.ca_file and are bounded in time.
  const origin = new URL(directoryUrl).origin;
  const agent = ca ? new Agent({ ca: [...rootCertificates, ca] }) : null;
  const interceptor = acme.axios.interceptors.request.use((request) => {
    if (request.url && new URL(request.url).origin === origin) {
      request.timeout = REQUEST_TIMEOUT;
      if (agent) request.httpsAgent = agent;
    }
    return request;
  });
  try {
    const client = new acme.Client({ directoryUrl, accountKey, backoffMin: 500, backoffMax: 10_000 });
    // Registered here rather than by auto(): for an account the CA knows already, acme-client
    // sends the payload again as an update (RFC 8555 §7.3.2), and one without contact is no
    // update, which the CA refuses; an explicit (maybe empty) contact list makes it one.
    // Enabling ACME is the admin's acceptance of the CA's subscriber agreement (docs/install.md).
    await client.createAccount({ termsOfServiceAgreed: true, contact: email ? [`mailto:${email}`] : [] });
    const [key, csr] = await acme.crypto.createCsr({ commonName: names[0]!, altNames: names });
    const cert = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      // acme-client's own pre-check fetches the token through the system resolver, which need not see what the CA sees.
      skipChallengeVerification: true,
      challengePriority: ["http-01"],
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        await challenges.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        await challenges.delete(challenge.token);
      },
    });
    return { key, cert: Buffer.from(cert) };
  } finally {
    acme.axios.interceptors.request.eject(interceptor);
  }
}

export function createAccountKey(): Promise<Buffer> {
  return acme.crypto.createPrivateKey();
}
