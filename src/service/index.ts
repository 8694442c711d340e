// The changes an admin can make, in one place for the UI, the API and the
// CLI: each validates through the store, writes the audit log with who did
// it, and registers forwarding destinations that need confirmation. One
// module per resource; this file composes them.
import type { Config, ConfigInput } from "../config/index.ts";
import type { DB } from "../store/db.ts";
import { accountService } from "./accounts.ts";
import { aliasService } from "./aliases.ts";
import { catchAllService } from "./catchall.ts";
import { destinationService } from "./destinations.ts";
import { domainService } from "./domains.ts";
import { listService } from "./lists.ts";
import { settingsService } from "./settings.ts";
import { type Forwarding, testMessageService } from "./test-message.ts";
import { tokenService } from "./tokens.ts";
import { queueService } from "./queue.ts";
import { passwordService } from "./passwords.ts";
import { nodeService } from "./nodes.ts";

export interface ServiceDeps {
  db: DB;
  /** Read on each use, so settings changed at run time apply. */
  config: Config;
  /** How `config` was loaded (environment, flags, working dir): settings changes reload it the same way. */
  configInput: ConfigInput;
  /** Queues mail mailferry writes itself: the outbox in the server; from the CLI its table, which the server sends from. */
  queueMail: (to: string, raw: Buffer) => Promise<unknown>;
  /** Signs and checks verification links (store/secrets.ts loadNodeSecrets). */
  verifyKey: string;
  /** Where recipients of a verification mail open its link. */
  publicUrl: () => string | null;
  /** The server's router and relay, for test messages (the CLI has none). */
  forwarding?: Forwarding;
  /** Sends the outbound queue's due messages now (the server); the CLI has none. */
  runQueue?: () => void;
  now?: () => number;
}

export function createServices(deps: ServiceDeps) {
  const { db, config } = deps;
  const now = deps.now ?? Date.now;
  const destinations = destinationService({ db, config, verifyKey: deps.verifyKey, publicUrl: deps.publicUrl, queueMail: deps.queueMail, now });

  return {
    destinations,
    settings: settingsService({ db, config, configInput: deps.configInput }),
    testMessage: testMessageService({ db, config, now, ...(deps.forwarding ? { forwarding: deps.forwarding } : {}) }),
    accounts: accountService(db, config.dataDir),
    domains: domainService({ db, config, now }),
    ...aliasService({ db, config, destinations }),
    lists: listService(db),
    catchAll: catchAllService(db, now),
    tokens: tokenService(db, now),
    queue: queueService({ db, now, ...(deps.runQueue ? { runQueue: deps.runQueue } : {}) }),
    passwords: passwordService(db, now),
    nodes: nodeService(db),
  };
}

export type Services = ReturnType<typeof createServices>;
