// The admins' own accounts — created (set-up page, CLI), signed in, second
// factor, sessions — each change audited here, like every other admin change.
import { type Actor, audit } from "../store/audit.ts";
import { confirmTotp, createAdmin, disableTotp, revokeSession } from "../store/admins.ts";
import type { DB } from "../store/db.ts";
import type { Admin } from "../store/schema.ts";
import { removeSetupToken } from "../store/setup-token.ts";

export function accountService(db: DB, dataDir: string) {
  return {
    /** A new admin; the one-time set-up token is spent. `by`: who made it (the new admin itself on the set-up page). */
    async create(username: string, password: string, by: (admin: Admin) => Actor): Promise<Admin> {
      const admin = await createAdmin(db, username, password);
      removeSetupToken(dataDir);
      await audit(db, by(admin), "admin.create", admin.username);
      return admin;
    },
    recordLogin: (admin: Admin, ip: string) => audit(db, { name: `admin:${admin.username}`, ip }, "login", admin.username),
    /** Turns the second factor on with a first code; returns the recovery codes. */
    async enableTotp(actor: Actor, admin: Admin, code: string): Promise<string[]> {
      const recovery = await confirmTotp(db, admin, code);
      await audit(db, actor, "account.totp.enable", admin.username);
      return recovery;
    },
    async disableTotp(actor: Actor, admin: Pick<Admin, "id" | "username">): Promise<void> {
      await disableTotp(db, admin.id);
      await audit(db, actor, "account.totp.disable", admin.username);
    },
    async revokeSession(actor: Actor, admin: Pick<Admin, "id" | "username">, sessionId: string): Promise<void> {
      await revokeSession(db, admin.id, sessionId);
      await audit(db, actor, "account.session.revoke", admin.username);
    },
  };
}
