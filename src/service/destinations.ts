// The verification flow of forwarding destinations: which recipients need
// it, the signed mail that asks, and the confirmation.
import type { Config } from "../config/index.ts";
import { buildVerificationMail, checkVerification, signVerification, type VerificationCheck, verificationLink, VERIFY_VALIDITY_MS } from "../delivery/verification.ts";
import { UserError } from "../errors.ts";
import { canonicalRecipient } from "../routing/rules.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { ensureDestination, findDestination, listDestinations, markVerified, noteVerificationSent, parseDestination, removeDestination } from "../store/destinations.ts";
import { findDomain } from "../store/domains.ts";
import type { Destination } from "../store/schema.ts";

/** A second mail to the same address is refused within this time (nobody needs two a minute). */
export const RESEND_AFTER_MS = 60_000;

export interface DestinationDeps {
  db: DB;
  config: Config;
  verifyKey: string;
  /** The base URL recipients open the link at. */
  publicUrl: () => string;
  queueMail: (to: string, raw: Buffer) => Promise<void>;
  now: () => number;
}

export type DestinationState = Destination & { status: "verified" | "pending" };

export const withStatus = (d: Destination): DestinationState => ({ ...d, status: d.verified_at === null ? "pending" : "verified" });

export function destinationService(deps: DestinationDeps) {
  const { db } = deps;

  async function send(address: string): Promise<void> {
    const token = signVerification(address, deps.now() + VERIFY_VALIDITY_MS, deps.verifyKey);
    const raw = await buildVerificationMail({ to: address, link: verificationLink(deps.publicUrl(), token), hostname: deps.config.hostname, now: new Date(deps.now()) });
    await deps.queueMail(address, raw);
    await noteVerificationSent(db, address, deps.now());
  }

  /** Whether an address is on a managed domain (or a subdomain of one), where aliases, not verification, decide. */
  async function managed(address: string): Promise<boolean> {
    const labels = address.slice(address.lastIndexOf("@") + 1).split(".");
    for (let i = 0; i < labels.length - 1; i++) if (await findDomain(db, labels.slice(i).join("."))) return true;
    return false;
  }

  return {
    list: async (page: { after?: number; limit?: number } = {}) => (await listDestinations(db, page)).map(withStatus),

    async get(input: string): Promise<DestinationState> {
      const row = await findDestination(db, parseDestination(input));
      if (!row) throw new UserError("not_found", `${input} is not a destination`, "address");
      return withStatus(row);
    },

    /** Adds a destination and mails it a link, unless it is verified already. */
    async add(actor: Actor, input: string): Promise<{ destination: DestinationState; sent: boolean }> {
      const address = parseDestination(input);
      if (await managed(address)) throw new UserError("invalid", `${address} is on a managed domain: its aliases route it, no verification needed`, "address");
      const { destination, created } = await ensureDestination(db, address, deps.now());
      if (created) await audit(db, actor, "destination.add", address, null, { address });
      const sent = destination.verified_at === null && (destination.last_sent_at === null || deps.now() - destination.last_sent_at >= RESEND_AFTER_MS);
      if (sent) await send(address);
      return { destination: withStatus((await findDestination(db, address))!), sent };
    },

    async resend(actor: Actor, input: string): Promise<DestinationState> {
      const address = parseDestination(input);
      const row = await findDestination(db, address);
      if (!row) throw new UserError("not_found", `${address} is not a destination`, "address");
      if (row.verified_at !== null) throw new UserError("conflict", `${address} is verified already`, "address");
      if (row.last_sent_at !== null && deps.now() - row.last_sent_at < RESEND_AFTER_MS) throw new UserError("conflict", `a verification mail went to ${address} less than a minute ago`, "address");
      await send(address);
      await audit(db, actor, "destination.resend", address);
      return withStatus((await findDestination(db, address))!);
    },

    async remove(actor: Actor, input: string): Promise<void> {
      const row = await removeDestination(db, parseDestination(input));
      await audit(db, actor, "destination.remove", row.address, withStatus(row), null);
    },

    /**
     * After an alias was saved: its plain address recipients outside the managed
     * domains become destinations, and new ones (or ones whose last link has
     * expired) are mailed a link. Templates ($1) and domain recipients produce
     * addresses only at delivery time; those are added by hand.
     */
    async register(actor: Actor, recipients: string[]): Promise<string[]> {
      if (!deps.config.delivery.verifyDestinations) return [];
      const mailed: string[] = [];
      for (const recipient of recipients) {
        const canonical = /\$[1-9]/.test(recipient) ? null : canonicalRecipient(recipient);
        if (canonical?.kind !== "address") continue;
        const address = canonical.value.toLowerCase();
        if (await managed(address)) continue;
        const { destination, created } = await ensureDestination(db, address, deps.now());
        if (created) await audit(db, actor, "destination.add", address, null, { address });
        if (destination.verified_at !== null) continue;
        if (destination.last_sent_at !== null && deps.now() - destination.last_sent_at < VERIFY_VALIDITY_MS) continue;
        await send(address);
        mailed.push(address);
      }
      return mailed;
    },

    check: (token: string): VerificationCheck => checkVerification(token, deps.verifyKey, deps.now()),

    /** The owner confirmed (POST from the link's page). */
    async confirm(token: string, ip: string): Promise<DestinationState> {
      const check = checkVerification(token, deps.verifyKey, deps.now());
      if (!check.ok) throw new UserError("invalid", check.reason === "expired" ? "this link has expired; ask for a new one" : "this link is not valid", "token");
      const before = await findDestination(db, check.address);
      const row = await markVerified(db, check.address, deps.now());
      if (before?.verified_at === null) await audit(db, { name: `destination:${check.address}`, ip }, "destination.verify", check.address);
      return withStatus(row);
    },
  };
}

export type DestinationService = ReturnType<typeof destinationService>;
