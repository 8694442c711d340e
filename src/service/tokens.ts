// API tokens: made (the secret shown once) and revoked.
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { createToken, revokeToken } from "../store/tokens.ts";

export function tokenService(db: DB, now: () => number) {
  return {
    async create(actor: Actor, name: string, scope: string) {
      const created = await createToken(db, name, scope, now());
      await audit(db, actor, "token.create", name, null, created.info);
      return created;
    },
    async revoke(actor: Actor, name: string) {
      const info = await revokeToken(db, name, now());
      await audit(db, actor, "token.revoke", name, null, info);
      return info;
    },
  };
}
