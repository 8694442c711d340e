// The dashboard's "Getting started" panel (docs/admin-ui.md): the first day's
// steps, each done or not, read from what exists. Once every step was seen
// done the panel is gone for good, so the dashboard stops checking DNS for it.
import { sql } from "kysely";
import type { DB } from "../store/db.ts";

export interface FirstRunFacts {
  /** The first domain added, if any. */
  domain: string | null;
  /** Every required DNS record of that domain and of this server is published. */
  dnsOk: boolean;
  aliases: number;
  /** A test message was accepted by a destination at least once. */
  testDelivered: boolean;
}

export interface FirstRunStep {
  title: string;
  done: boolean;
  /** Where the step is done. */
  href: string;
  hint: string;
}

export function firstRunSteps(f: FirstRunFacts): FirstRunStep[] {
  const aliasesOf = f.domain ? `/aliases?domain=${f.domain}` : "/aliases";
  return [
    { title: "Create the first admin", done: true, href: "/account", hint: "You are logged in." },
    { title: "Add a domain", done: f.domain !== null, href: "/domains", hint: "The domain whose mail mailferry receives." },
    {
      title: "Publish its DNS records",
      done: f.dnsOk,
      href: f.domain ? `/domains/${f.domain}` : "/domains",
      hint: "At your DNS provider; the domain page checks each record live (✓/✗).",
    },
    { title: "Add an alias", done: f.aliases > 0, href: aliasesOf, hint: "An address on your domain and where its mail goes." },
    { title: "Send a test message", done: f.testDelivered, href: aliasesOf, hint: "From the alias's row: mailferry sends one through the real forwarding path and shows the destination's reply." },
  ];
}

const DONE_KEY = "first_run_done";

/**
 * The facts behind the steps, or null once all were done. `dnsOk` runs the
 * live DNS check, only while the panel is still shown.
 */
export async function firstRunFacts(db: DB, dnsOk: (domain: string) => Promise<boolean>, now = Date.now()): Promise<FirstRunFacts | null> {
  if (await db.selectFrom("settings").select("key").where("key", "=", DONE_KEY).executeTakeFirst()) return null;
  const [domain, aliases, tested] = await Promise.all([
    db.selectFrom("domains").select("name").orderBy("id").limit(1).executeTakeFirst(),
    db.selectFrom("aliases").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
    db
      .selectFrom("audit_log")
      .select("id")
      .where("action", "=", "alias.test_message")
      .where(sql<number>`json_extract(after, '$.delivered')`, ">", 0)
      .limit(1)
      .executeTakeFirst(),
  ]);
  const facts: FirstRunFacts = { domain: domain?.name ?? null, dnsOk: domain ? await dnsOk(domain.name) : false, aliases: Number(aliases.n), testDelivered: tested !== undefined };
  if (firstRunSteps(facts).every((s) => s.done)) {
    await db.insertInto("settings").values({ key: DONE_KEY, value: "true", updated_at: now }).onConflict((oc) => oc.doNothing()).execute();
    return null;
  }
  return facts;
}
