// The DKIM signature of mail mailferry writes itself: DSNs, vacation replies,
// verification mails and any notice added later. The outbox signs each one as
// it leaves (see outbox.ts), so no producer can forget to.
//
// The signing domain is the nearest managed domain at or above the From
// domain, which DMARC's relaxed alignment accepts (RFC 7489 §3.1.1). Server
// notices come from the host name: when no managed domain covers it, a key of
// the host name itself signs, and its record is listed with the host's.
import addressparser from "nodemailer/lib/addressparser";
import { dkimRecordValue, type SigningKey } from "../mail/dkim-key.ts";
import { type DnsRecord, dnsRecord } from "../auth/records.ts";
import { headerBlockEnd, headerValue, parseHeaderBlock } from "../mail/headers.ts";
import type { DB } from "../store/db.ts";
import { signingKey } from "../store/dkim-keys.ts";
import { serverDkimKey } from "../store/server-key.ts";

/** The domain of the (first) From address, lower-case; null without one. */
export function fromDomain(raw: Buffer): string | null {
  const end = headerBlockEnd(raw);
  const fields = parseHeaderBlock(raw.subarray(0, end === -1 ? raw.length : end).toString("utf8"));
  const [from] = addressparser(headerValue(fields, "from") ?? "", { flatten: true });
  const at = from?.address?.lastIndexOf("@") ?? -1;
  return at > 0 ? from!.address.slice(at + 1).toLowerCase() : null;
}

/** A name, then each parent domain that still has two labels: mx.mail.example.net → mx.mail.example.net, mail.example.net, example.net. */
export function selfAndParents(name: string): string[] {
  const labels = name.toLowerCase().replace(/\.$/, "").split(".");
  return labels.slice(0, -1).map((_, i) => labels.slice(i).join("."));
}

/** The signing key of the nearest managed domain at or above `domain`. */
async function managedKey(db: DB, domain: string): Promise<SigningKey | null> {
  for (const name of selfAndParents(domain)) {
    const key = await signingKey(db, name);
    if (key) return key;
  }
  return null;
}

/** The key that signs mail from `domain`: a managed domain's, else for the host name the server key, else none. */
export async function originatedKey(db: DB, hostname: string, domain: string): Promise<SigningKey | null> {
  const managed = await managedKey(db, domain);
  if (managed || domain !== hostname.toLowerCase()) return managed;
  const server = await serverDkimKey(db);
  return { domain, selector: server.selector, privateKey: server.private_key };
}

/** The message with a DKIM-Signature on top, and the signing domain; unchanged (null) when no key covers its From. */
export async function signOriginated(db: DB, hostname: string, raw: Buffer): Promise<{ message: Buffer; signedBy: string | null }> {
  const domain = fromDomain(raw);
  const key = domain ? await originatedKey(db, hostname, domain) : null;
  if (!key) return { message: raw, signedBy: null };
  // The signer (mailauth) loads with the first notice, not at start: forwarded copies are signed in the worker.
  const { signMessage } = await import("../auth/dkim.ts");
  return { message: Buffer.concat([Buffer.from(await signMessage(raw, key), "utf8"), raw]), signedBy: key.domain };
}

/** The DKIM record of the server key, when the host name needs one (no managed domain covers it). */
export async function serverKeyRecord(db: DB, hostname: string): Promise<DnsRecord | null> {
  if (await managedKey(db, hostname)) return null;
  const key = await serverDkimKey(db);
  return dnsRecord(`${key.selector}._domainkey.${hostname.toLowerCase()}`, "TXT", dkimRecordValue(key), "DKIM key of this server's host name: signs its bounces and verification mails");
}
