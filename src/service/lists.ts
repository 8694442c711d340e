// The allow- and denylist and greylist entries an admin forgets.
import { addAllow, removeAllow } from "../store/allowlist.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { addDeny, forgetGreylist, removeDeny } from "../store/senders.ts";

export function listService(db: DB) {
  return {
    async deny(actor: Actor, value: string, options: { reason?: string; expiresAt?: number | null }) {
      const entry = await addDeny(db, value, options);
      await audit(db, actor, "deny.add", entry.value, null, entry);
      return entry;
    },
    async undeny(actor: Actor, value: string) {
      await removeDeny(db, value);
      await audit(db, actor, "deny.remove", value);
    },
    async allow(actor: Actor, value: string, note = "") {
      const entry = await addAllow(db, value, note);
      await audit(db, actor, "allow.add", entry.value, null, entry);
      return entry;
    },
    async disallow(actor: Actor, value: string) {
      await removeAllow(db, value);
      await audit(db, actor, "allow.remove", value);
    },
    async forgetGreylist(actor: Actor, key: string) {
      await forgetGreylist(db, key);
      await audit(db, actor, "greylist.forget", key);
    },
  };
}
