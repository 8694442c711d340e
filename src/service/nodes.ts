// Forgetting a decommissioned node (docs/multi-node.md): it stops being named
// as an MX host in the MTA-STS policy and the DNS records.
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { forgetNode } from "../store/nodes.ts";

export function nodeService(db: DB) {
  return {
    async forget(actor: Actor, hostname: string) {
      await forgetNode(db, hostname);
      await audit(db, actor, "node.forget", hostname.trim().toLowerCase());
    },
  };
}
