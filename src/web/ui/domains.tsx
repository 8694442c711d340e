/** @jsxImportSource hono/jsx */
// /domains: the list, one domain's page with its DNS records and their live
// status, its settings, and webhook and DKIM key rotation.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { zoneLine } from "../../auth/records.ts";
import type { DomainSettings } from "../../aliases/rules.ts";
import { aliasCountsByDomain, searchAliases } from "../../store/aliases.ts";
import { listDkimKeys } from "../../store/dkim-keys.ts";
import { domainSettings, findDomain, listDomains, webhookKey } from "../../store/domains.ts";
import { DomainPage, DomainsPage, RecordChecks } from "../../../views/domains.tsx";
import type { FieldErrors } from "../../../views/layout.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, liveChecks, okNote, type UiDeps, user } from "./common.ts";

/** A follow-the-configuration select: "default" → null; anything but on/off is passed on for the validation to refuse. */
function followOrSet(value: string | undefined): boolean | null {
  if (value === undefined || value === "default") return null;
  return value === "on" ? true : value === "off" ? false : (value as never);
}

/** The settings form's changes (a number field that is not a whole number reads as NaN, for the validation to refuse). */
function settingsChanges(f: Record<string, string>): Partial<DomainSettings> {
  const int = (v: string | undefined) => (v && /^\d+$/.test(v.trim()) ? Number(v) : NaN);
  return {
    catchAll: f.catch_all === "on",
    acceptSubdomains: followOrSet(f.accept_subdomains),
    randomSubdomain: followOrSet(f.random_subdomain),
    scanSpam: f.scan_spam === "on",
    maxTargets: int(f.max_targets),
    randomSubdomainLength: int(f.random_subdomain_length),
    deliveryPort: f.delivery_port?.trim() ? int(f.delivery_port) : null,
  };
}

export function domainRoutes(deps: UiDeps): Hono<Env> {
  const { db, services } = deps;
  const routes = new Hono<Env>();

  /** Answers 404 unless the domain of the path is managed here. */
  const knownDomain: MiddlewareHandler<Env> = async (c, next) => ((await findDomain(db, c.req.param("name")!)) ? next() : c.text("No such domain\n", 404));

  async function domainRows() {
    const counts = await aliasCountsByDomain(db);
    return (await listDomains(db)).map((d) => ({ name: d.name, aliases: counts.get(d.id) ?? 0, created_at: d.created_at }));
  }
  const domainPage = async (c: Context<Env>, name: string, extra: { errors?: FieldErrors; status?: 200 | 422 } = {}) => {
    const domain = await findDomain(db, name);
    if (!domain) return c.text("No such domain\n", 404);
    const [report, key, dkim, aliasCount] = await Promise.all([liveChecks(deps, name), webhookKey(db, name), listDkimKeys(db, name), searchAliases(db, { domain: name, q: "", page: 1, perPage: 1 }).then((r) => r.total)]);
    return c.html(
      <DomainPage user={user(c)} csrf={csrfOf(c)} name={name} settings={domainSettings(domain)} defaults={deps.config.addresses} report={report} webhookKey={key} aliasCount={aliasCount} dkim={dkim} errors={extra.errors} ok={okNote(c)} />,
      extra.status ?? 200,
    );
  };

  routes.get("/", async (c) => c.html(<DomainsPage user={user(c)} csrf={csrfOf(c)} domains={await domainRows()} ok={okNote(c)} />));
  routes.post("/", async (c) => {
    const f = await form(c);
    try {
      const domain = await services.domains.add(adminActor(c), f.name ?? "");
      return back(c, `/domains/${domain.name}`, `Added ${domain.name}. Publish the DNS records below.`);
    } catch (err) {
      return c.html(<DomainsPage user={user(c)} csrf={csrfOf(c)} domains={await domainRows()} name={f.name} errors={fieldError(err, "name")} />, 422);
    }
  });
  routes.get("/:name", (c) => domainPage(c, c.req.param("name")));
  routes.get("/:name/check", knownDomain, async (c) => c.html(<RecordChecks report={await liveChecks(deps, c.req.param("name"))} domain={c.req.param("name")} />));
  routes.get("/:name/zone", knownDomain, async (c) => c.text((await services.domains.records(c.req.param("name"))).map(zoneLine).join("\n") + "\n"));
  routes.post("/:name/settings", async (c) => {
    const name = c.req.param("name");
    const f = await form(c);
    if (!(await findDomain(db, name))) return c.text("No such domain\n", 404);
    try {
      await services.domains.update(adminActor(c), name, settingsChanges(f));
      return back(c, `/domains/${name}`, "Settings saved.");
    } catch (err) {
      return domainPage(c, name, { errors: fieldError(err), status: 422 });
    }
  });
  routes.post("/:name/webhook-key", async (c) => {
    const name = c.req.param("name");
    await services.domains.rotateWebhookKey(adminActor(c), name);
    return back(c, `/domains/${name}`, "Webhook key rotated. Update your endpoints.");
  });
  routes.post("/:name/dkim-rotate", async (c) => {
    const name = c.req.param("name");
    const key = await services.domains.rotateDkim(adminActor(c), name);
    return back(c, `/domains/${name}`, `New DKIM key ${key.selector}, pending: publish its record; mailferry signs with it once DNS serves it (checked on this page and every 10 minutes).`);
  });
  routes.post("/:name/dkim-activate", async (c) => {
    const name = c.req.param("name");
    const done = await services.domains.activateDkim(adminActor(c), name);
    return back(c, `/domains/${name}`, `DKIM key ${done.selector} signs now${done.retired.length ? `; keep the record of ${done.retired.join(", ")} published for a week` : ""}.`);
  });
  routes.post("/:name/delete", async (c) => {
    const name = c.req.param("name");
    if ((await form(c)).confirm !== "yes") return back(c, `/domains/${name}`, "Tick the confirmation to remove the domain.");
    await services.domains.remove(adminActor(c), name);
    return back(c, "/domains", `Removed ${name}.`);
  });
  return routes;
}
