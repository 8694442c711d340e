// The dashboard's "Getting started" panel (docs/admin-ui.md): the first day's
// steps, each done or not, read from what exists. Once every step was seen
// done the panel is gone for good, so the dashboard stops checking DNS for it.
import { countAliases } from "../store/aliases.ts";
import { anyTestMessageDelivered } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { firstDomainName } from "../store/domains.ts";
import { firstRunDone, markFirstRunDone } from "../store/settings.ts";

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

/**
 * The facts behind the steps, or null once all were done. `dnsOk` runs the
 * live DNS check, only while the panel is still shown.
 */
export async function firstRunFacts(db: DB, dnsOk: (domain: string) => Promise<boolean>, now = Date.now()): Promise<FirstRunFacts | null> {
  if (await firstRunDone(db)) return null;
  const [domain, aliases, testDelivered] = await Promise.all([firstDomainName(db), countAliases(db), anyTestMessageDelivered(db)]);
  const facts: FirstRunFacts = { domain, dnsOk: domain ? await dnsOk(domain) : false, aliases, testDelivered };
  if (firstRunSteps(facts).every((s) => s.done)) {
    await markFirstRunDone(db, now);
    return null;
  }
  return facts;
}
