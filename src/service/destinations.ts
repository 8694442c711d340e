// Forwarding destinations outside the managed domains: which must confirm
// before they get mail (docs/aliases.md, "Destinations"), the signed mail that
// asks, and the three ways its owner confirms (a reply, a code, a link).
import type { Config } from "../config/index.ts";
import {
  buildVerificationMail,
  checkVerification,
  confirmationCode,
  normalizeCode,
  parseReplyAddress,
  replyAddress,
  sameCode,
  signVerification,
  type VerificationCheck,
  verificationLink,
  VERIFY_VALIDITY_MS,
} from "../delivery/verification.ts";
import { UserError } from "../errors.ts";
import { canonicalRecipient } from "../aliases/rules.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { ensureDestination, findDestination, findDestinationById, listDestinations, markVerified, noteVerificationSent, parseDestination, pendingSince, removeDestination } from "../store/destinations.ts";
import { findDomain } from "../store/domains.ts";
import type { Destination } from "../store/schema.ts";

/** A second mail to the same address is refused within this time (nobody needs two a minute). */
export const RESEND_AFTER_MS = 60_000;

export interface DestinationDeps {
  db: DB;
  config: Config;
  verifyKey: string;
  /** The base URL recipients open the link at; null when the admin port is not reachable from outside. */
  publicUrl: () => string | null;
  queueMail: (to: string, raw: Buffer) => Promise<unknown>;
  now: () => number;
}

export type DestinationState = Destination & { status: "verified" | "pending" };

export const withStatus = (d: Destination): DestinationState => ({ ...d, status: d.verified_at === null ? "pending" : "verified" });

/** A target of a saved alias that gets no mail yet, and why, as told to whoever saved it. */
export interface Waiting {
  target: string;
  why: string;
  /** A verification mail was sent to it just now. */
  mailed: boolean;
}

const HOW_TO_CONFIRM = "its owner confirms by replying to the verification mail (or with its code on the Destinations page, or its link)";

/** A recipient built at delivery time ($1) or naming a whole domain: never confirmable address by address. */
function computedTarget(recipient: string): string | null {
  if (/\$[1-9]/.test(recipient)) {
    const sample = canonicalRecipient(recipient.replace(/\$[1-9]/g, "x"));
    return sample?.kind === "webhook" ? null : (sample?.value ?? null);
  }
  const canonical = canonicalRecipient(recipient);
  return canonical?.kind === "domain" ? `x@${canonical.value}` : null;
}

export function destinationService(deps: DestinationDeps) {
  const { db } = deps;
  const mode = () => deps.config.delivery.verifyDestinations;
  /** Under `tokens`, an admin's word is the confirmation; under `all` only the owner's is. */
  const vouches = (actor: Actor) => mode() === "tokens" && actor.confirmsDestinations === true;

  async function send(row: Destination): Promise<void> {
    const sentAt = deps.now();
    const code = confirmationCode(row.address, sentAt, deps.verifyKey);
    const base = deps.publicUrl();
    const raw = await buildVerificationMail({
      to: row.address,
      hostname: deps.config.hostname,
      replyTo: replyAddress(row.id, code, deps.config.srs.domain),
      code,
      link: base ? verificationLink(base, signVerification(row.address, sentAt + VERIFY_VALIDITY_MS, deps.verifyKey)) : null,
      now: new Date(sentAt),
    });
    await deps.queueMail(row.address, raw);
    await noteVerificationSent(db, row.address, sentAt);
  }

  /** Whether an address is on a managed domain (or a subdomain of one), where aliases, not verification, decide. */
  async function managed(address: string): Promise<boolean> {
    const labels = address.slice(address.lastIndexOf("@") + 1).split(".");
    for (let i = 0; i < labels.length - 1; i++) if (await findDomain(db, labels.slice(i).join("."))) return true;
    return false;
  }

  async function confirmAs(address: string, by: Actor, how: string): Promise<DestinationState> {
    const before = await findDestination(db, address);
    const row = await markVerified(db, address, how, deps.now());
    if (before?.verified_at === null) await audit(db, by, "destination.confirm", address, null, { confirmed_by: how });
    return withStatus(row);
  }

  /** One plain outside address of a saved alias: confirmed by the actor's word, or mailed and waiting. */
  async function registerAddress(actor: Actor, address: string): Promise<Waiting | null> {
    const { destination, created } = await ensureDestination(db, address, deps.now());
    if (created) await audit(db, actor, "destination.add", address, null, { address });
    if (destination.verified_at !== null) return null;
    if (vouches(actor)) {
      await confirmAs(address, actor, actor.name);
      return null;
    }
    const fresh = destination.last_sent_at !== null && deps.now() - destination.last_sent_at < VERIFY_VALIDITY_MS;
    if (!fresh) await send(destination);
    const who = mode() === "all" ? "verify_destinations = all" : `added by ${actor.name}, a token without admin scope`;
    return { target: address, why: `${who}: ${HOW_TO_CONFIRM}`, mailed: !fresh };
  }

  return {
    list: async (page: { after?: number; limit?: number } = {}) => (await listDestinations(db, page)).map(withStatus),

    async get(input: string): Promise<DestinationState> {
      const row = await findDestination(db, parseDestination(input));
      if (!row) throw new UserError("not_found", `${input} is not a destination`, "address");
      return withStatus(row);
    },

    /** Adds a destination: confirmed by an admin's word under `tokens`, else mailed a verification (unless confirmed already). */
    async add(actor: Actor, input: string): Promise<{ destination: DestinationState; sent: boolean }> {
      const address = parseDestination(input);
      if (await managed(address)) throw new UserError("invalid", `${address} is on a managed domain: its aliases route it, no verification needed`, "address");
      const { destination, created } = await ensureDestination(db, address, deps.now());
      if (created) await audit(db, actor, "destination.add", address, null, { address });
      if (destination.verified_at === null && vouches(actor)) return { destination: await confirmAs(address, actor, actor.name), sent: false };
      const sent = destination.verified_at === null && (destination.last_sent_at === null || deps.now() - destination.last_sent_at >= RESEND_AFTER_MS);
      if (sent) await send(destination);
      return { destination: withStatus((await findDestination(db, address))!), sent };
    },

    async resend(actor: Actor, input: string): Promise<DestinationState> {
      const address = parseDestination(input);
      const row = await findDestination(db, address);
      if (!row) throw new UserError("not_found", `${address} is not a destination`, "address");
      if (row.verified_at !== null) throw new UserError("conflict", `${address} is verified already`, "address");
      if (row.last_sent_at !== null && deps.now() - row.last_sent_at < RESEND_AFTER_MS) throw new UserError("conflict", `a verification mail went to ${address} less than a minute ago`, "address");
      await send(row);
      await audit(db, actor, "destination.resend", address);
      return withStatus((await findDestination(db, address))!);
    },

    async remove(actor: Actor, input: string): Promise<void> {
      const row = await removeDestination(db, parseDestination(input));
      await audit(db, actor, "destination.remove", row.address, withStatus(row), null);
    },

    /**
     * Before an alias is saved: an actor whose word does not confirm (a
     * write-scope token) may not forward to addresses built at delivery time or
     * to whole domains outside the managed ones, since no owner could ever
     * confirm them one by one.
     */
    async checkConfirmable(actor: Actor, recipients: string[]): Promise<void> {
      if (mode() === "off" || actor.confirmsDestinations) return;
      for (const recipient of recipients) {
        const sample = computedTarget(recipient.trim());
        if (sample && !(await managed(sample))) {
          throw new UserError("invalid", `${actor.name} cannot forward to ${recipient}: addresses built at delivery time or whole domains outside the managed domains can never be confirmed by their owners; an admin can add it`, "recipients");
        }
      }
    },

    /**
     * After an alias was saved: its outside destinations that get no mail yet,
     * and why. Plain addresses are registered (and confirmed by an admin's word
     * under `tokens`, or mailed a verification); under `all`, addresses built at
     * delivery time each wait for a confirmation of their own.
     */
    async register(actor: Actor, recipients: string[]): Promise<Waiting[]> {
      if (mode() === "off") return [];
      const waiting: Waiting[] = [];
      for (const recipient of recipients) {
        const computed = computedTarget(recipient);
        if (computed) {
          if (mode() === "all" && !(await managed(computed))) {
            waiting.push({ target: recipient, why: "verify_destinations = all: each address it builds must be confirmed by its owner before mail reaches it (verify_destinations = tokens lets an admin's aliases forward at once)", mailed: false });
          }
          continue;
        }
        const canonical = canonicalRecipient(recipient);
        if (canonical?.kind !== "address" || (await managed(canonical.value))) continue;
        const state = await registerAddress(actor, canonical.value.toLowerCase());
        if (state) waiting.push(state);
      }
      return waiting;
    },

    check: (token: string): VerificationCheck => checkVerification(token, deps.verifyKey, deps.now()),

    /** The owner confirmed (POST from the link's page). */
    async confirm(token: string, ip: string): Promise<DestinationState> {
      const check = checkVerification(token, deps.verifyKey, deps.now());
      if (!check.ok) throw new UserError("invalid", check.reason === "expired" ? "this link has expired; ask for a new one" : "this link is not valid", "token");
      return confirmAs(check.address, { name: `destination:${check.address}`, ip }, "link");
    },

    /** The owner replied to the verification mail: its Reply-To carries the destination and the code. Null: not a valid one. */
    async confirmByReply(recipient: string, ip: string): Promise<DestinationState | null> {
      const parsed = parseReplyAddress(recipient, deps.config.srs.domain);
      const row = parsed ? await findDestinationById(db, parsed.id) : undefined;
      if (!parsed || !row || row.last_sent_at === null || deps.now() - row.last_sent_at > VERIFY_VALIDITY_MS) return null;
      if (!sameCode(parsed.code, confirmationCode(row.address, row.last_sent_at, deps.verifyKey))) return null;
      return confirmAs(row.address, { name: `destination:${row.address}`, ip }, "reply");
    },

    /** The owner passed the code of the verification mail to an admin, who enters it. */
    async confirmByCode(actor: Actor, input: string): Promise<DestinationState> {
      const code = normalizeCode(input);
      for (const row of await pendingSince(db, deps.now() - VERIFY_VALIDITY_MS)) {
        if (sameCode(code, confirmationCode(row.address, row.last_sent_at!, deps.verifyKey))) return confirmAs(row.address, actor, "code");
      }
      throw new UserError("invalid", "no pending destination has this code (it may have expired: send the verification mail again)", "code");
    },
  };
}

export type DestinationService = ReturnType<typeof destinationService>;
