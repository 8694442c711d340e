import type { Kysely } from "kysely";
import { ddl, isPostgres } from "../dialect.ts";

/**
 * Issue 9: aliases on subdomains of a managed domain (addresses such as
 * name@x7k2p9q1.example.com), domain settings that follow the configuration
 * until set, verified forwarding destinations and API tokens.
 * Runs with foreign keys off (see openStore), as SQLite's table rebuild needs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const run = (text: string) => ddl(db, text);

  // NULL: follow [addresses] subdomain_match / random_subdomain. An untouched 0 becomes "follow".
  await run(`ALTER TABLE domains RENAME COLUMN accept_subdomains TO accept_subdomains_before`);
  await run(`ALTER TABLE domains ADD COLUMN accept_subdomains INTEGER CHECK (accept_subdomains IN (0, 1))`);
  await run(`UPDATE domains SET accept_subdomains = 1 WHERE accept_subdomains_before = 1`);
  await run(`ALTER TABLE domains DROP COLUMN accept_subdomains_before`);
  await run(`ALTER TABLE domains ADD COLUMN random_subdomain INTEGER CHECK (random_subdomain IN (0, 1))`);

  // The same name may now exist once per subdomain: the unique key gains it.
  await (isPostgres(db) ? widenAliasKey(run) : rebuildAliases(run));

  await run(`CREATE TABLE destinations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    address TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    verified_at INTEGER,
    last_sent_at INTEGER,
    sent_count INTEGER NOT NULL DEFAULT 0
  )`);
  // Only verification changes what routing does; resending a mail does not.
  await run(bumpRouting("destinations_insert_routing", "AFTER INSERT ON destinations WHEN NEW.verified_at IS NOT NULL"));
  await run(bumpRouting("destinations_update_routing", "AFTER UPDATE OF verified_at ON destinations"));
  await run(bumpRouting("destinations_delete_routing", "AFTER DELETE ON destinations"));

  await run(`CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  )`);
  await run(`CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL`);
}

/** In SQLite a unique key changes only by rebuilding the table (and its triggers). */
async function rebuildAliases(run: (text: string) => Promise<void>): Promise<void> {
  await run(`CREATE TABLE aliases_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    subdomain TEXT NOT NULL DEFAULT '',
    matcher TEXT NOT NULL CHECK (matcher IN ('exact', 'regex', 'catch-all')),
    pattern TEXT NOT NULL,
    regex_global INTEGER NOT NULL DEFAULT 0,
    recipients TEXT NOT NULL DEFAULT '[]',
    enabled INTEGER NOT NULL DEFAULT 1,
    disabled_mode TEXT CHECK (disabled_mode IN ('drop', 'soft', 'hard')),
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT aliases_domain_subdomain_matcher_pattern UNIQUE (domain_id, subdomain, matcher, pattern)
  )`);
  const columns = "id, domain_id, matcher, pattern, regex_global, recipients, enabled, disabled_mode, description, created_at, updated_at";
  await run(`INSERT INTO aliases_new (${columns}) SELECT ${columns} FROM aliases`);
  await run(`DROP TABLE aliases`);
  await run(`ALTER TABLE aliases_new RENAME TO aliases`);
  for (const op of ["INSERT", "UPDATE", "DELETE"]) await run(bumpRouting(`aliases_${op.toLowerCase()}_routing`, `AFTER ${op} ON aliases`));
}

/** PostgreSQL changes the key in place (a rebuild would break the references of vacations). */
async function widenAliasKey(run: (text: string) => Promise<void>): Promise<void> {
  await run(`ALTER TABLE aliases ADD COLUMN subdomain TEXT NOT NULL DEFAULT ''`);
  await run(`ALTER TABLE aliases DROP CONSTRAINT aliases_domain_matcher_pattern`);
  await run(`ALTER TABLE aliases ADD CONSTRAINT aliases_domain_subdomain_matcher_pattern UNIQUE (domain_id, subdomain, matcher, pattern)`);
}

function bumpRouting(name: string, when: string): string {
  return `CREATE TRIGGER ${name} ${when} BEGIN
    UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'routing_version';
  END`;
}
