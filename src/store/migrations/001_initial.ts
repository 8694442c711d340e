import { type ColumnDefinitionBuilder, type Kysely, sql } from "kysely";
import { integerType, isPostgres } from "../dialect.ts";

export async function up(db: Kysely<unknown>): Promise<void> {
  // SQLite's INTEGER is 64-bit; PostgreSQL's would not hold millisecond times (src/store/dialect.ts).
  const integer = integerType(db);
  const id = (c: ColumnDefinitionBuilder) => (isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement());
  await db.schema
    .createTable("domains")
    .addColumn("id", integer, id)
    .addColumn("name", "text", (c) => c.notNull().unique())
    .addColumn("created_at", integer, (c) => c.notNull())
    .addColumn("updated_at", integer, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("aliases")
    .addColumn("id", integer, id)
    .addColumn("domain_id", integer, (c) => c.notNull().references("domains.id").onDelete("cascade"))
    .addColumn("matcher", "text", (c) => c.notNull().check(sql`matcher in ('exact', 'regex', 'catch-all')`))
    .addColumn("pattern", "text", (c) => c.notNull())
    .addColumn("regex_global", integer, (c) => c.notNull().defaultTo(0))
    .addColumn("recipients", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("enabled", integer, (c) => c.notNull().defaultTo(1))
    .addColumn("disabled_mode", "text", (c) => c.check(sql`disabled_mode in ('drop', 'soft', 'hard')`))
    .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("created_at", integer, (c) => c.notNull())
    .addColumn("updated_at", integer, (c) => c.notNull())
    .addUniqueConstraint("aliases_domain_matcher_pattern", ["domain_id", "matcher", "pattern"])
    .execute();

  await db.schema
    .createTable("settings")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("updated_at", integer, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("events")
    .addColumn("id", integer, id)
    .addColumn("at", integer, (c) => c.notNull())
    .addColumn("session_id", "text", (c) => c.notNull())
    .addColumn("remote_ip", "text", (c) => c.notNull())
    .addColumn("stage", "text", (c) => c.notNull())
    .addColumn("code", integer, (c) => c.notNull())
    .addColumn("enhanced", "text", (c) => c.notNull())
    .addColumn("text", "text", (c) => c.notNull())
    .addColumn("mail_from", "text")
    .addColumn("recipients", "text")
    .addColumn("domain", "text")
    .addColumn("message_id", "text")
    .addColumn("subject", "text")
    .addColumn("headers", "text")
    .addColumn("detail", "text")
    .execute();
  await db.schema.createIndex("events_at").on("events").column("at").execute();
  await db.schema.createIndex("events_domain_at").on("events").columns(["domain", "at"]).execute();
  await db.schema.createIndex("events_session").on("events").column("session_id").execute();
}
