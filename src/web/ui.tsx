/** @jsxImportSource hono/jsx */
// The admin UI routes: server-rendered pages (Hono JSX) enhanced by htmx.
// Every change goes through the same store functions as the CLI and is
// written to the audit log; invalid input is answered next to its field.
import type { Context, Hono } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import QRCode from "qrcode";
import { explain } from "../routing/explain.ts";
import { type Config, type ConfigInput, loadConfigWithOrigins } from "../config/index.ts";
import { duration } from "../config/values.ts";
import { zoneLine } from "../auth/records.ts";
import type { Resolver } from "../dns/resolver.ts";
import { UserError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Router } from "../routing/router.ts";
import { type AliasRule, aliasLabel, type DomainSettings, parseAliasName, placeName } from "../routing/rules.ts";
import { activeDenylist } from "../store/senders.ts";
import { adminCount, checkLogin, confirmTotp, createAdmin, createSession, disableTotp, listSessions, revokeSession, startTotp, totpFor } from "../store/admins.ts";
import { aliasById, exportAliases, searchAliases } from "../store/aliases.ts";
import { listAllow } from "../store/allowlist.ts";
import { audit, listAudit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { listDkimKeys } from "../store/dkim-keys.ts";
import { domainSettings, findDomain, listDomains, parseDomainName, webhookKey } from "../store/domains.ts";
import { eventById, listEvents } from "../store/events.ts";
import { dailySeries } from "../store/stats.ts";
import { listTokens } from "../store/tokens.ts";
import { setVacation, vacationOf } from "../store/vacations.ts";
import { ApiPage, type ApiDocument } from "../../views/api.tsx";
import { AccountPage, LoginPage, SetupLocked, SetupPage } from "../../views/auth.tsx";
import { DestinationsPage } from "../../views/destinations.tsx";
import { AliasEditRow, AliasesPage, AliasRow, CreateForm, ImportForm, VacationPage } from "../../views/aliases.tsx";
import { DashboardPage } from "../../views/dashboard.tsx";
import { TestMessagePage } from "../../views/test-message.tsx";
import { DomainPage, DomainsPage, RecordChecks } from "../../views/domains.tsx";
import type { FieldErrors } from "../../views/layout.tsx";
import { AuditPage, EDITABLE, EventPage, ListsPage, type LogFilters, LogPage, SettingsPage } from "../../views/log.tsx";
import { firstRunFacts, firstRunSteps } from "../service/first-run.ts";
import type { Services } from "../service/index.ts";
import type { Waiting } from "../service/destinations.ts";
import { writeSettings } from "../config/write.ts";
import { removeSetupToken } from "../store/setup-token.ts";
import { actorOf, type Env, SESSION_COOKIE } from "./session.ts";

export interface UiDeps {
  db: DB;
  config: Config;
  configInput: ConfigInput;
  resolver: Resolver;
  /** A resolver without a cache, for checking what DNS publishes right now. */
  liveResolver: Resolver;
  router: Router;
  logger: Logger;
  setupToken: () => string | null;
  /** Applies a reloaded configuration to the running appliance (what can change without restart). */
  applyConfig: (next: Config) => void;
  secureCookies: boolean;
  services: Services;
  /** The API's OpenAPI document, for its reference page. */
  apiDocument: () => unknown;
}

const PER_PAGE = 50;

const waitingNote = (waiting: Waiting[]) => waiting.map((w) => ` No mail to ${w.target} yet (${w.why})${w.mailed ? "; a verification mail was sent" : ""}.`).join("");

/** A follow-the-configuration select: "default" → null; anything but on/off is passed on for the validation to refuse. */
function followOrSet(value: string | undefined): boolean | null {
  if (value === undefined || value === "default") return null;
  return value === "on" ? true : value === "off" ? false : (value as never);
}

export function mountUi(app: Hono<Env>, deps: UiDeps): void {
  const { db, services } = deps;
  const user = (c: Context<Env>) => c.get("session")!.admin.username;
  const csrfOf = (c: Context<Env>) => c.get("session")!.csrf;
  const isHtmx = (c: Context<Env>) => c.req.header("hx-request") === "true";
  const form = async (c: Context<Env>) => {
    const body = await c.req.parseBody();
    return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === "string" ? v : ""])) as Record<string, string>;
  };
  const fieldError = (err: unknown, fallback = "form"): FieldErrors => {
    if (err instanceof UserError) return { [err.field ?? fallback]: err.message };
    throw err;
  };
  const back = (c: Context<Env>, path: string, ok: string) => c.redirect(`${path}${path.includes("?") ? "&" : "?"}ok=${encodeURIComponent(ok)}`);
  const ok = (c: Context<Env>) => c.req.query("ok") ?? null;

  // --- first run and login ---------------------------------------------------------------
  // Set-up exists only while there is no admin, and only with the token printed at start.
  const setupToken = async () => ((await adminCount(db)) === 0 ? deps.setupToken() : null);
  app.get("/setup", async (c) => {
    const token = await setupToken();
    if (!token || c.req.query("token") !== token) return c.html(<SetupLocked />, token ? 403 : 404);
    return c.html(<SetupPage token={token} />);
  });
  app.post("/setup", async (c) => {
    const f = await form(c);
    const token = await setupToken();
    if (!token || f.token !== token) return c.html(<SetupLocked />, 403);
    if (f.password !== f.password2) return c.html(<SetupPage token={token} username={f.username} errors={{ password2: "The passwords differ" }} />, 422);
    try {
      const admin = await createAdmin(db, f.username ?? "", f.password ?? "");
      removeSetupToken(deps.config.dataDir);
      await audit(db, { name: `admin:${admin.username}`, ip: c.get("ip") }, "admin.create", admin.username);
      deps.logger.info("admin.created", { username: admin.username, via: "setup" });
      return login(c, admin.id, "/");
    } catch (err) {
      return c.html(<SetupPage token={token} username={f.username} errors={fieldError(err)} />, 422);
    }
  });

  async function login(c: Context<Env>, adminId: number, next: string) {
    const { token } = await createSession(db, adminId, c.get("ip"), c.req.header("user-agent") ?? "");
    setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: "Strict", secure: deps.secureCookies, path: "/", maxAge: 7 * 86_400 });
    return c.redirect(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  }

  app.get("/login", (c) => (c.get("session") ? c.redirect("/") : c.html(<LoginPage />)));
  app.post("/login", async (c) => {
    const f = await form(c);
    const result = await checkLogin(db, { username: f.username ?? "", password: f.password ?? "", code: f.code || undefined, ip: c.get("ip") });
    if ("admin" in result) {
      await audit(db, { name: `admin:${result.admin.username}`, ip: c.get("ip") }, "login", result.admin.username);
      return login(c, result.admin.id, c.req.query("next") ?? "/");
    }
    const messages = {
      invalid: "Wrong user name or password.",
      throttled: `Too many failed attempts; try again in ${Math.ceil((result.retryAfterS ?? 900) / 60)} minutes.`,
      totp_required: "Enter the code from your authenticator app.",
      totp_invalid: "That code is not valid.",
    };
    const status = result.error === "throttled" ? 429 : result.error === "totp_required" ? 200 : 401;
    return c.html(<LoginPage error={messages[result.error]} username={f.username} askCode={result.error.startsWith("totp")} />, status);
  });
  app.post("/logout", async (c) => {
    const session = c.get("session")!;
    await revokeSession(db, session.admin.id, session.sessionId);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/login");
  });

  // --- dashboard -----------------------------------------------------------------------
  app.get("/", async (c) => {
    const [data, events, domains, aliases] = await Promise.all([
      dailySeries(db, 30),
      listEvents(db, { limit: 20 }),
      listDomains(db),
      db.selectFrom("aliases").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
    ]);
    // The "Getting started" steps, until they were all done once.
    const firstRun = await firstRunFacts(db, async (name) => (await liveChecks(name)).ok);
    return c.html(<DashboardPage user={user(c)} csrf={csrfOf(c)} data={data} events={events} domains={domains.length} aliases={Number(aliases.n)} firstRun={firstRun && firstRunSteps(firstRun)} />);
  });

  // --- domains -------------------------------------------------------------------------
  async function domainRows() {
    const counts = await db.selectFrom("aliases").select(["domain_id"]).select((eb) => eb.fn.countAll<number>().as("n")).groupBy("domain_id").execute();
    const byId = new Map(counts.map((r) => [r.domain_id, Number(r.n)]));
    return (await listDomains(db)).map((d) => ({ name: d.name, aliases: byId.get(d.id) ?? 0, created_at: d.created_at }));
  }
  const records = (name: string) => services.domains.records(name);
  // The same check as `mailferry dns check <name>`: the domain's records and this server's host records
  // (a pending DKIM key whose record DNS serves starts signing).
  const liveChecks = (name: string) => services.domains.checkDns([name], (n, t) => deps.liveResolver.resolve(n, t));

  app.get("/domains", async (c) => c.html(<DomainsPage user={user(c)} csrf={csrfOf(c)} domains={await domainRows()} ok={ok(c)} />));
  app.post("/domains", async (c) => {
    const f = await form(c);
    try {
      const domain = await services.domains.add(actorOf(c), f.name ?? "");
      return back(c, `/domains/${domain.name}`, `Added ${domain.name}. Publish the DNS records below.`);
    } catch (err) {
      return c.html(<DomainsPage user={user(c)} csrf={csrfOf(c)} domains={await domainRows()} name={f.name} errors={fieldError(err, "name")} />, 422);
    }
  });
  const domainPage = async (c: Context<Env>, name: string, extra: { errors?: FieldErrors; status?: 200 | 422 } = {}) => {
    const domain = await findDomain(db, name);
    if (!domain) return c.text("No such domain\n", 404);
    const [report, key, dkim, aliasCount] = await Promise.all([liveChecks(name), webhookKey(db, name), listDkimKeys(db, name), searchAliases(db, { domain: name, q: "", page: 1, perPage: 1 }).then((r) => r.total)]);
    return c.html(
      <DomainPage user={user(c)} csrf={csrfOf(c)} name={name} settings={domainSettings(domain)} defaults={deps.config.addresses} report={report} webhookKey={key} aliasCount={aliasCount} dkim={dkim} errors={extra.errors} ok={ok(c)} />,
      extra.status ?? 200,
    );
  };
  app.get("/domains/:name", (c) => domainPage(c, c.req.param("name")));
  app.get("/domains/:name/check", async (c) => {
    const name = c.req.param("name");
    if (!(await findDomain(db, name))) return c.text("No such domain\n", 404);
    return c.html(<RecordChecks report={await liveChecks(name)} domain={name} />);
  });
  app.get("/domains/:name/zone", async (c) => {
    const name = c.req.param("name");
    if (!(await findDomain(db, name))) return c.text("No such domain\n", 404);
    return c.text((await records(name)).map(zoneLine).join("\n") + "\n");
  });
  app.post("/domains/:name/settings", async (c) => {
    const name = c.req.param("name");
    const f = await form(c);
    if (!(await findDomain(db, name))) return c.text("No such domain\n", 404);
    const int = (v: string | undefined) => (v && /^\d+$/.test(v.trim()) ? Number(v) : NaN);
    const changes: Partial<DomainSettings> = {
      catchAll: f.catch_all === "on",
      acceptSubdomains: followOrSet(f.accept_subdomains),
      randomSubdomain: followOrSet(f.random_subdomain),
      scanSpam: f.scan_spam === "on",
      maxTargets: int(f.max_targets),
      randomSubdomainLength: int(f.random_subdomain_length),
      deliveryPort: f.delivery_port?.trim() ? int(f.delivery_port) : null,
    };
    try {
      await services.domains.update(actorOf(c), name, changes);
      return back(c, `/domains/${name}`, "Settings saved.");
    } catch (err) {
      return domainPage(c, name, { errors: fieldError(err), status: 422 });
    }
  });
  app.post("/domains/:name/webhook-key", async (c) => {
    const name = c.req.param("name");
    await services.domains.rotateWebhookKey(actorOf(c), name);
    return back(c, `/domains/${name}`, "Webhook key rotated. Update your endpoints.");
  });
  app.post("/domains/:name/dkim-rotate", async (c) => {
    const name = c.req.param("name");
    const key = await services.domains.rotateDkim(actorOf(c), name);
    return back(c, `/domains/${name}`, `New DKIM key ${key.selector}, pending: publish its record; mailferry signs with it once DNS serves it (checked on this page and every 10 minutes).`);
  });
  app.post("/domains/:name/dkim-activate", async (c) => {
    const name = c.req.param("name");
    const done = await services.domains.activateDkim(actorOf(c), name);
    return back(c, `/domains/${name}`, `DKIM key ${done.selector} signs now${done.retired.length ? `; keep the record of ${done.retired.join(", ")} published for a week` : ""}.`);
  });
  app.post("/domains/:name/delete", async (c) => {
    const name = c.req.param("name");
    if ((await form(c)).confirm !== "yes") return back(c, `/domains/${name}`, "Tick the confirmation to remove the domain.");
    await services.domains.remove(actorOf(c), name);
    return back(c, "/domains", `Removed ${name}.`);
  });

  // --- aliases -------------------------------------------------------------------------
  const domainNames = async () => (await listDomains(db)).map((d) => d.name);
  const recipientsOf = (text: string | undefined) => (text ?? "").split(/[\n,]+/).map((r) => r.trim()).filter(Boolean);
  const disabledOf = (v: string | undefined) => (v === "drop" || v === "soft" || v === "hard" ? v : null);

  const aliasesPage = async (c: Context<Env>, formState?: { values: Record<string, string>; errors: FieldErrors }, status: 200 | 422 = 200) => {
    const domain = c.req.query("domain") || null;
    const q = c.req.query("q") ?? "";
    const page = Math.max(1, Number(c.req.query("page")) || 1);
    const result = await searchAliases(db, { domain, q, page, perPage: PER_PAGE });
    return c.html(
      <AliasesPage user={user(c)} csrf={csrfOf(c)} domains={await domainNames()} domain={domain} q={q} page={page} pages={Math.ceil(result.total / PER_PAGE)} total={result.total} aliases={result.aliases} ok={ok(c)} form={formState} />,
      status,
    );
  };
  app.get("/aliases", (c) => aliasesPage(c));
  app.post("/aliases", async (c) => {
    const f = await form(c);
    try {
      const { alias: rule, waiting } = await services.aliases.add(actorOf(c), f.domain ?? "", { ...parseAliasName((f.name ?? "").trim()), recipients: recipientsOf(f.recipients), disabled: disabledOf(f.disabled), description: f.description ?? "" });
      const created = `Created ${aliasLabel(rule)}@${placeName(rule)}.${waitingNote(waiting)}`;
      if (isHtmx(c)) return c.html(<CreateForm csrf={csrfOf(c)} domains={await domainNames()} values={{ domain: rule.domain, created, created_id: String(rule.id) }} />);
      return back(c, `/aliases?domain=${rule.domain}`, created);
    } catch (err) {
      const errors = fieldError(err);
      if (isHtmx(c)) return c.html(<CreateForm csrf={csrfOf(c)} domains={await domainNames()} values={f} errors={errors} />, 422);
      return aliasesPage(c, { values: f, errors }, 422);
    }
  });
  app.get("/aliases/test", async (c) => {
    const address = (c.req.query("address") ?? "").trim();
    const text = address ? explain(address, await deps.router.resolve(address)) : "Enter an address.";
    const body = <pre id="test-verdict">{text}</pre>;
    return isHtmx(c) ? c.html(body) : c.html(<pre>{text}</pre>);
  });
  app.get("/aliases/export", async (c) => {
    const domain = c.req.query("domain") ?? "";
    const lines = await exportAliases(db, domain);
    c.header("content-disposition", `attachment; filename="${parseDomainName(domain)}.txt"`);
    return c.text(lines.join("\n") + "\n");
  });
  app.post("/aliases/import", async (c) => {
    const f = await form(c);
    const values = { domain: f.domain ?? "", text: f.text ?? "", replace: f.replace === "on" };
    const apply = f.mode === "apply";
    let result;
    try {
      const { report, waiting } = await services.aliases.import(actorOf(c), values.domain, values.text, { apply, replace: values.replace });
      const count = `${report.aliases.length} alias${report.aliases.length === 1 ? "" : "es"}${report.port !== null ? ` and delivery port ${report.port}` : ""}`;
      const summary = report.errors.length
        ? `Nothing imported: ${report.errors.length} error${report.errors.length === 1 ? "" : "s"}.`
        : report.applied
          ? `Imported ${count} into ${report.domain}.${waitingNote(waiting)}`
          : `Would import ${count} into ${report.domain}${values.replace ? ", replacing its aliases" : ""}.`;
      result = { applied: report.applied, summary, errors: report.errors, preview: report.errors.length ? [] : report.aliases.map((a) => `${aliasLabel(a)} -> ${a.recipients.join(", ") || `(disabled: ${a.disabled})`}`) };
    } catch (err) {
      const errors = fieldError(err);
      result = { applied: false, summary: Object.values(errors)[0] ?? "Import failed", errors: [], preview: [] };
    }
    const status = result.errors.length || !result.preview.length ? 422 : 200;
    const body = <ImportForm csrf={csrfOf(c)} domains={await domainNames()} values={values} result={result} />;
    if (isHtmx(c)) return c.html(body, status);
    return c.html(body, status);
  });

  const aliasOr404 = async (c: Context<Env>): Promise<AliasRule | Response> => {
    const alias = await aliasById(db, Number(c.req.param("id")));
    return alias ?? c.text("No such alias\n", 404);
  };
  app.get("/aliases/:id/row", async (c) => {
    const alias = await aliasOr404(c);
    return alias instanceof Response ? alias : c.html(<AliasRow alias={alias} csrf={csrfOf(c)} />);
  });
  app.get("/aliases/:id/edit", async (c) => {
    const alias = await aliasOr404(c);
    return alias instanceof Response ? alias : c.html(<AliasEditRow alias={alias} csrf={csrfOf(c)} />);
  });
  app.post("/aliases/:id", async (c) => {
    const alias = await aliasOr404(c);
    if (alias instanceof Response) return alias;
    const f = await form(c);
    try {
      const { alias: after } = await services.aliases.update(actorOf(c), alias.id, { recipients: recipientsOf(f.recipients), disabled: disabledOf(f.disabled), description: f.description ?? "" });
      return isHtmx(c) ? c.html(<AliasRow alias={after} csrf={csrfOf(c)} />) : back(c, `/aliases?domain=${alias.domain}`, "Saved.");
    } catch (err) {
      return c.html(<AliasEditRow alias={alias} csrf={csrfOf(c)} values={f} errors={fieldError(err)} />, 422);
    }
  });
  app.post("/aliases/:id/delete", async (c) => {
    const alias = await aliasOr404(c);
    if (alias instanceof Response) return alias;
    await services.aliases.remove(actorOf(c), alias.id);
    return isHtmx(c) ? c.html("") : back(c, `/aliases?domain=${alias.domain}`, `Deleted ${aliasLabel(alias)}@${placeName(alias)}.`);
  });
  // Send a test message through the real forwarding path; the answer page shows each destination's reply.
  app.get("/aliases/:id/test-message", async (c) => {
    const alias = await aliasOr404(c);
    return alias instanceof Response ? alias : c.html(<TestMessagePage user={user(c)} csrf={csrfOf(c)} alias={alias} />);
  });
  app.post("/aliases/:id/test-message", async (c) => {
    const alias = await aliasOr404(c);
    if (alias instanceof Response) return alias;
    const f = await form(c);
    try {
      const report = await services.testMessage.send(actorOf(c), alias.id, f.address ?? "");
      return c.html(<TestMessagePage user={user(c)} csrf={csrfOf(c)} alias={alias} report={report} />);
    } catch (err) {
      return c.html(<TestMessagePage user={user(c)} csrf={csrfOf(c)} alias={alias} values={f} errors={fieldError(err)} />, 422);
    }
  });
  app.get("/aliases/:id/vacation", async (c) => {
    const alias = await aliasOr404(c);
    if (alias instanceof Response) return alias;
    const v = await vacationOf(db, alias.id);
    const values = { enabled: v?.enabled ? "on" : "", subject: v?.subject ?? "", message: v?.message ?? "", start: v?.start_date ?? "", end: v?.end_date ?? "" };
    return c.html(<VacationPage user={user(c)} csrf={csrfOf(c)} alias={alias} values={values} ok={ok(c)} />);
  });
  app.post("/aliases/:id/vacation", async (c) => {
    const alias = await aliasOr404(c);
    if (alias instanceof Response) return alias;
    const f = await form(c);
    try {
      const before = await vacationOf(db, alias.id);
      const after = await setVacation(db, placeName(alias), alias.pattern, { subject: f.subject ?? "", message: f.message ?? "", start: f.start || null, end: f.end || null, enabled: f.enabled === "on" });
      await audit(db, actorOf(c), "alias.vacation", `${alias.pattern}@${placeName(alias)}`, before ?? null, after);
      return back(c, `/aliases/${alias.id}/vacation`, "Vacation reply saved.");
    } catch (err) {
      return c.html(<VacationPage user={user(c)} csrf={csrfOf(c)} alias={alias} values={f} errors={fieldError(err)} />, 422);
    }
  });

  // --- mail log ------------------------------------------------------------------------
  app.get("/log", async (c) => {
    const filters: LogFilters = { domain: c.req.query("domain") ?? "", alias: c.req.query("alias") ?? "", sender: c.req.query("sender") ?? "", verdict: c.req.query("verdict") ?? "", since: c.req.query("since") ?? "" };
    const page = Math.max(1, Number(c.req.query("page")) || 1);
    const since = /^\d{4}-\d{2}-\d{2}$/.test(filters.since) ? Date.parse(`${filters.since}T00:00:00Z`) : undefined;
    const verdict = ["accepted", "deferred", "rejected"].includes(filters.verdict) ? (filters.verdict as "accepted") : undefined;
    const events = await listEvents(db, {
      ...(filters.domain ? { domain: filters.domain.toLowerCase() } : {}),
      ...(filters.alias ? { recipient: filters.alias } : {}),
      ...(filters.sender ? { sender: filters.sender } : {}),
      ...(verdict ? { verdict } : {}),
      ...(since ? { since } : {}),
      limit: PER_PAGE + 1,
      offset: (page - 1) * PER_PAGE,
    });
    return c.html(<LogPage user={user(c)} csrf={csrfOf(c)} filters={filters} events={events.slice(0, PER_PAGE)} page={page} more={events.length > PER_PAGE} retentionDays={Math.round(deps.config.log.retention / 86_400_000)} />);
  });
  app.get("/log/:id", async (c) => {
    const event = await eventById(db, Number(c.req.param("id")));
    if (!event) return c.text("No such event (it may have expired)\n", 404);
    const related = (await listEvents(db, { sessionId: event.session_id, limit: 200 })).reverse();
    return c.html(<EventPage user={user(c)} csrf={csrfOf(c)} event={event} related={related} />);
  });

  // --- deny / allow / greylist ---------------------------------------------------------
  const listsPage = async (c: Context<Env>, errors?: FieldErrors, status: 200 | 422 = 200) => {
    const [deny, allow, greylist] = await Promise.all([activeDenylist(db), listAllow(db), db.selectFrom("greylist").selectAll().orderBy("last_seen", "desc").limit(100).execute()]);
    return c.html(<ListsPage user={user(c)} csrf={csrfOf(c)} deny={deny} allow={allow} greylist={greylist} errors={errors} ok={ok(c)} />, status);
  };
  app.get("/lists", (c) => listsPage(c));
  app.post("/lists/deny", async (c) => {
    const f = await form(c);
    try {
      let expiresAt: number | null = null;
      if (f.expires?.trim()) {
        try {
          expiresAt = Date.now() + duration(f.expires.trim());
        } catch {
          throw new UserError("invalid", "use a duration such as 12h, 7d or 30d", "expires");
        }
      }
      const entry = await services.lists.deny(actorOf(c), f.deny_value ?? "", { reason: f.reason ?? "", expiresAt });
      return back(c, "/lists", `Denied ${entry.value}.`);
    } catch (err) {
      const e = fieldError(err);
      return listsPage(c, "value" in e ? { deny_value: e.value } : e, 422);
    }
  });
  app.post("/lists/deny/delete", async (c) => {
    const value = (await form(c)).value ?? "";
    await services.lists.undeny(actorOf(c), value);
    return back(c, "/lists", `Removed ${value} from the denylist.`);
  });
  app.post("/lists/allow", async (c) => {
    const f = await form(c);
    try {
      const entry = await services.lists.allow(actorOf(c), f.allow_value ?? "", f.note ?? "");
      return back(c, "/lists", `Allowlisted ${entry.value}.`);
    } catch (err) {
      const e = fieldError(err);
      return listsPage(c, "value" in e ? { allow_value: e.value } : e, 422);
    }
  });
  app.post("/lists/allow/delete", async (c) => {
    const value = (await form(c)).value ?? "";
    await services.lists.disallow(actorOf(c), value);
    return back(c, "/lists", `Removed ${value} from the allowlist.`);
  });
  app.post("/lists/greylist/delete", async (c) => {
    const key = (await form(c)).key ?? "";
    await services.lists.forgetGreylist(actorOf(c), key);
    return back(c, "/lists", "Greylist entry forgotten.");
  });

  // --- destinations --------------------------------------------------------------------
  const destinationsPage = async (c: Context<Env>, extra: { values?: Record<string, string>; errors?: FieldErrors; status?: 200 | 422 } = {}) =>
    c.html(
      <DestinationsPage user={user(c)} csrf={csrfOf(c)} rows={await services.destinations.list()} verifying={deps.config.delivery.verifyDestinations} values={extra.values} errors={extra.errors} ok={ok(c)} />,
      extra.status ?? 200,
    );
  app.get("/destinations", (c) => destinationsPage(c));
  app.post("/destinations", async (c) => {
    const f = await form(c);
    try {
      const { destination, sent } = await services.destinations.add(actorOf(c), f.address ?? "");
      const note = destination.status === "verified" ? `${destination.address} is confirmed (${destination.confirmed_by}).` : sent ? `Verification mail sent to ${destination.address}.` : `${destination.address} is waiting for confirmation.`;
      return back(c, "/destinations", note);
    } catch (err) {
      return destinationsPage(c, { values: f, errors: fieldError(err, "address"), status: 422 });
    }
  });
  app.post("/destinations/resend", async (c) => {
    const address = (await form(c)).address ?? "";
    try {
      await services.destinations.resend(actorOf(c), address);
      return back(c, "/destinations", `Verification mail sent again to ${address}.`);
    } catch (err) {
      return destinationsPage(c, { errors: fieldError(err, "address"), status: 422 });
    }
  });
  app.post("/destinations/confirm", async (c) => {
    const f = await form(c);
    try {
      const destination = await services.destinations.confirmByCode(actorOf(c), f.code ?? "");
      return back(c, "/destinations", `${destination.address} is confirmed: mail is forwarded there now.`);
    } catch (err) {
      return destinationsPage(c, { values: f, errors: fieldError(err, "code"), status: 422 });
    }
  });
  app.post("/destinations/remove", async (c) => {
    const address = (await form(c)).address ?? "";
    await services.destinations.remove(actorOf(c), address);
    return back(c, "/destinations", `Removed ${address}; it must verify again to receive mail.`);
  });

  // --- API tokens and reference ---------------------------------------------------------
  const apiPage = async (c: Context<Env>, extra: { created?: { name: string; token: string }; values?: Record<string, string>; errors?: FieldErrors; status?: 200 | 201 | 422 } = {}) =>
    c.html(
      <ApiPage user={user(c)} csrf={csrfOf(c)} tokens={await listTokens(db)} created={extra.created} doc={deps.apiDocument() as ApiDocument} values={extra.values} errors={extra.errors} ok={ok(c)} />,
      extra.status ?? 200,
    );
  app.get("/api-access", (c) => apiPage(c));
  app.post("/api-access", async (c) => {
    const f = await form(c);
    try {
      const { token, info } = await services.tokens.create(actorOf(c), (f.name ?? "").trim(), f.scope ?? "");
      // Shown in this answer only: the page is not a redirect target, so a reload does not show it again.
      return apiPage(c, { created: { name: info.name, token }, status: 201 });
    } catch (err) {
      return apiPage(c, { values: f, errors: fieldError(err, "name"), status: 422 });
    }
  });
  app.post("/api-access/revoke", async (c) => {
    const name = (await form(c)).name ?? "";
    await services.tokens.revoke(actorOf(c), name);
    return back(c, "/api-access", `Token ${name} revoked.`);
  });

  // --- audit, settings, account --------------------------------------------------------
  app.get("/audit", async (c) => {
    const page = Math.max(1, Number(c.req.query("page")) || 1);
    const entries = await listAudit(db, PER_PAGE + 1, (page - 1) * PER_PAGE);
    return c.html(<AuditPage user={user(c)} csrf={csrfOf(c)} entries={entries.slice(0, PER_PAGE)} page={page} more={entries.length > PER_PAGE} />);
  });

  const settingsPage = (c: Context<Env>, extra: { errors?: FieldErrors; values?: Record<string, string>; status?: 200 | 422 } = {}) => {
    const { effective, config } = loadConfigWithOrigins(deps.configInput);
    const shown = effective.map((e) => ({ key: e.key, value: e.shown || "(none)", origin: e.origin }));
    const values = extra.values ?? Object.fromEntries(effective.map((e) => [e.key, e.shown]));
    return c.html(
      <SettingsPage user={user(c)} csrf={csrfOf(c)} effective={shown} values={values} errors={extra.errors} ok={ok(c)} configFile={config.configFile ?? `${config.dataDir}/config.toml`} />,
      extra.status ?? 200,
    );
  };
  app.get("/settings", (c) => settingsPage(c));
  app.post("/settings", async (c) => {
    const f = await form(c);
    const changes = Object.fromEntries(EDITABLE.map(([key]) => [key, f[key] ?? ""]).filter(([key, value]) => !(key === "smarthost.password" && value === "")));
    try {
      const { before, after } = writeSettings(deps.configInput, changes);
      deps.applyConfig(after);
      await audit(db, actorOf(c), "settings.update", "config.toml", before, changes);
      return back(c, "/settings", "Settings saved and applied.");
    } catch (err) {
      const source = (err as { source?: string }).source;
      if (source === undefined) throw err;
      const key = EDITABLE.find(([k]) => source.includes(k.split(".").pop()!))?.[0] ?? "form";
      return settingsPage(c, { errors: { [key]: (err as Error).message.replace(/^invalid configuration: /, "") }, values: f, status: 422 });
    }
  });

  const accountPage = async (c: Context<Env>, extra: { pending?: { secret: string; uri: string; qrSvg: string } | null; recovery?: string[] | null; errors?: FieldErrors; status?: 200 | 422 } = {}) => {
    const session = c.get("session")!;
    const admin = (await db.selectFrom("admins").selectAll().where("id", "=", session.admin.id).executeTakeFirst())!;
    return c.html(
      <AccountPage user={admin.username} csrf={session.csrf} totpEnabled={admin.totp_enabled === 1} pending={extra.pending} recovery={extra.recovery} sessions={await listSessions(db, admin.id)} currentSession={session.sessionId} errors={extra.errors} ok={ok(c)} />,
      extra.status ?? 200,
    );
  };
  const pendingTotp = async (username: string, secret: string) => {
    const uri = totpFor(username, secret).toString();
    return { secret, uri, qrSvg: await QRCode.toString(uri, { type: "svg", margin: 1 }) };
  };
  app.get("/account", (c) => accountPage(c));
  app.post("/account/totp/start", async (c) => {
    const admin = c.get("session")!.admin;
    const secret = await startTotp(db, admin.id);
    return accountPage(c, { pending: await pendingTotp(admin.username, secret) });
  });
  app.post("/account/totp/confirm", async (c) => {
    const session = c.get("session")!;
    const admin = (await db.selectFrom("admins").selectAll().where("id", "=", session.admin.id).executeTakeFirst())!;
    try {
      const recovery = await confirmTotp(db, admin, (await form(c)).code ?? "");
      await audit(db, actorOf(c), "account.totp.enable", admin.username);
      return accountPage(c, { recovery });
    } catch (err) {
      return accountPage(c, { pending: admin.totp_secret ? await pendingTotp(admin.username, admin.totp_secret) : null, errors: fieldError(err), status: 422 });
    }
  });
  app.post("/account/totp/disable", async (c) => {
    const admin = c.get("session")!.admin;
    await disableTotp(db, admin.id);
    await audit(db, actorOf(c), "account.totp.disable", admin.username);
    return back(c, "/account", "TOTP turned off.");
  });
  app.post("/account/sessions/revoke", async (c) => {
    const session = c.get("session")!;
    await revokeSession(db, session.admin.id, (await form(c)).id ?? "");
    await audit(db, actorOf(c), "account.session.revoke", session.admin.username);
    return back(c, "/account", "Session revoked.");
  });
}
