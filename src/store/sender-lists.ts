// The allow- and denylist as the SMTP hot path reads them: held in memory and
// reloaded only when sender_lists_version moves (triggers bump it on any change,
// from any connection: server, CLI, API, a restored backup).
import type { Selectable } from "kysely";
import { listAllow } from "./allowlist.ts";
import type { DB } from "./db.ts";
import type { AllowlistTable, DenylistTable } from "./schema.ts";
import { versionCounter } from "./settings.ts";

type Allow = Selectable<AllowlistTable>;
type Deny = Selectable<DenylistTable>;

export interface SenderLists {
  allow: Allow[];
  /** Entries in force at the time asked for (not expired). */
  deny: Deny[];
}

export function createSenderLists(db: DB): (now: number) => Promise<SenderLists> {
  let loaded: { version: string; allow: Allow[]; deny: Deny[] } | null = null;
  return async (now) => {
    const version = await versionCounter(db, "sender_lists_version");
    if (loaded?.version !== version) {
      const [allow, deny] = await Promise.all([listAllow(db), db.selectFrom("denylist").selectAll().orderBy("kind").orderBy("value").execute()]);
      loaded = { version, allow, deny };
    }
    return { allow: loaded.allow, deny: loaded.deny.filter((e) => e.expires_at === null || e.expires_at > now) };
  };
}
