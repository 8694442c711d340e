import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * The last TOTP time step an admin signed in with: a code is accepted once
 * only (RFC 6238 §5.2), so one seen over a shoulder or in a log cannot be replayed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE admins ADD COLUMN totp_last_step INTEGER`);
}
