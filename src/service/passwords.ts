// App passwords for sending as an alias (docs/send-as.md): made (the secret
// shown once) and revoked, audited like every admin change.
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { createPassword, type PasswordInfo, revokePassword } from "../store/passwords.ts";
import { isoTime } from "./json.ts";

export function passwordService(db: DB, now: () => number) {
  return {
    async create(actor: Actor, identity: string, name: string) {
      const created = await createPassword(db, identity, name, now());
      await audit(db, actor, "password.create", `${created.info.identity} ${name}`, null, created.info);
      return created;
    },
    async revoke(actor: Actor, id: number) {
      const info = await revokePassword(db, id, now());
      await audit(db, actor, "password.revoke", `${info.identity} ${info.name}`, null, info);
      return info;
    },
  };
}

/** An app password as the API and `password list --json` show it (never its secret). */
export function passwordJson(p: PasswordInfo) {
  return { id: p.id, name: p.name, kind: p.kind, send_as: p.identity, created_at: isoTime(p.created_at), last_used_at: isoTime(p.last_used_at), revoked_at: isoTime(p.revoked_at) };
}
