/** @jsxImportSource hono/jsx */
// /aliases: search, create (htmx or plain form), edit in place, delete, TXT
// import and export, "what happens to mail for X", test messages and
// vacation replies.
import { Hono, type MiddlewareHandler } from "hono";
import type { Context } from "hono";
import { explain } from "../../routing/explain.ts";
import { type AliasRule, aliasLabel, parseAliasName, placeName } from "../../aliases/rules.ts";
import { UserError } from "../../errors.ts";
import type { Waiting } from "../../service/destinations.ts";
import { aliasById, exportAliases, searchAliases } from "../../store/aliases.ts";
import { listDomains, parseDomainName } from "../../store/domains.ts";
import { vacationOf } from "../../store/vacations.ts";
import { AliasEditRow, AliasesPage, AliasRow, CreateForm, ImportForm, VacationPage } from "../../../views/aliases.tsx";
import type { FieldErrors } from "../../../views/layout.tsx";
import { TestMessagePage } from "../../../views/test-message.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, fieldError, form, isHtmx, okNote, PER_PAGE, pageOf, type UiDeps, user } from "./common.ts";

const waitingNote = (waiting: Waiting[]) => waiting.map((w) => ` No mail to ${w.target} yet (${w.why})${w.mailed ? "; a verification mail was sent" : ""}.`).join("");
const recipientsOf = (text: string | undefined) => (text ?? "").split(/[\n,]+/).map((r) => r.trim()).filter(Boolean);
const disabledOf = (v: string | undefined) => (v === "drop" || v === "soft" || v === "hard" ? v : null);
const plural = (n: number, word: string, suffix = "s") => `${n} ${word}${n === 1 ? "" : suffix}`;

export function aliasRoutes(deps: UiDeps): Hono<Env> {
  const { db, services } = deps;
  const routes = new Hono<Env>();
  const domainNames = async () => (await listDomains(db)).map((d) => d.name);

  /** Loads the alias of the path's `:id` for the handler, or answers 404. */
  const withAlias: MiddlewareHandler<{ Variables: { alias: AliasRule } }> = async (c, next) => {
    const alias = await aliasById(db, Number(c.req.param("id")));
    if (!alias) return c.text("No such alias\n", 404);
    c.set("alias", alias);
    await next();
  };

  const aliasesPage = async (c: Context<Env>, formState?: { values: Record<string, string>; errors: FieldErrors }, status: 200 | 422 = 200) => {
    const domain = c.req.query("domain") || null;
    const q = c.req.query("q") ?? "";
    const page = pageOf(c);
    const result = await searchAliases(db, { domain, q, page, perPage: PER_PAGE });
    return c.html(
      <AliasesPage user={user(c)} csrf={csrfOf(c)} domains={await domainNames()} domain={domain} q={q} page={page} pages={Math.ceil(result.total / PER_PAGE)} total={result.total} aliases={result.aliases} ok={okNote(c)} form={formState} />,
      status,
    );
  };

  routes.get("/", (c) => aliasesPage(c));
  routes.post("/", async (c) => {
    const f = await form(c);
    try {
      const { alias: rule, waiting } = await services.aliases.add(adminActor(c), f.domain ?? "", { ...parseAliasName((f.name ?? "").trim()), recipients: recipientsOf(f.recipients), disabled: disabledOf(f.disabled), description: f.description ?? "" });
      const created = `Created ${aliasLabel(rule)}@${placeName(rule)}.${waitingNote(waiting)}`;
      if (isHtmx(c)) return c.html(<CreateForm csrf={csrfOf(c)} domains={await domainNames()} values={{ domain: rule.domain, created, created_id: String(rule.id) }} />);
      return back(c, `/aliases?domain=${rule.domain}`, created);
    } catch (err) {
      const errors = fieldError(err);
      if (isHtmx(c)) return c.html(<CreateForm csrf={csrfOf(c)} domains={await domainNames()} values={f} errors={errors} />, 422);
      return aliasesPage(c, { values: f, errors }, 422);
    }
  });
  routes.get("/test", async (c) => {
    const address = (c.req.query("address") ?? "").trim();
    const text = address ? explain(address, await deps.router.route(address)) : "Enter an address.";
    return isHtmx(c) ? c.html(<pre id="test-verdict">{text}</pre>) : c.html(<pre>{text}</pre>);
  });
  routes.get("/export", async (c) => {
    const domain = c.req.query("domain") ?? "";
    try {
      const lines = await exportAliases(db, domain);
      c.header("content-disposition", `attachment; filename="${parseDomainName(domain)}.txt"`);
      return c.text(lines.join("\n") + "\n");
    } catch (err) {
      // A domain not managed here (or not a domain name) is the request's fault, not the server's.
      if (!(err instanceof UserError)) throw err;
      return c.text(`${err.message}\n`, err.kind === "not_found" ? 404 : 400);
    }
  });
  routes.post("/import", async (c) => {
    const f = await form(c);
    const values = { domain: f.domain ?? "", text: f.text ?? "", replace: f.replace === "on" };
    let result;
    try {
      const { report, waiting } = await services.aliases.import(adminActor(c), values.domain, values.text, { apply: f.mode === "apply", replace: values.replace });
      const count = `${plural(report.aliases.length, "alias", "es")}${report.port !== null ? ` and delivery port ${report.port}` : ""}`;
      const summary = report.errors.length
        ? `Nothing imported: ${plural(report.errors.length, "error")}.`
        : report.applied
          ? `Imported ${count} into ${report.domain}.${waitingNote(waiting)}`
          : `Would import ${count} into ${report.domain}${values.replace ? ", replacing its aliases" : ""}.`;
      result = { applied: report.applied, summary, errors: report.errors, preview: report.errors.length ? [] : report.aliases.map((a) => `${aliasLabel(a)} -> ${a.recipients.join(", ") || `(disabled: ${a.disabled})`}`) };
    } catch (err) {
      const errors = fieldError(err);
      result = { applied: false, summary: Object.values(errors)[0] ?? "Import failed", errors: [], preview: [] };
    }
    const status = result.errors.length || !result.preview.length ? 422 : 200;
    return c.html(<ImportForm csrf={csrfOf(c)} domains={await domainNames()} values={values} result={result} />, status);
  });

  routes.get("/:id/row", withAlias, (c) => c.html(<AliasRow alias={c.var.alias} csrf={csrfOf(c)} />));
  routes.get("/:id/edit", withAlias, (c) => c.html(<AliasEditRow alias={c.var.alias} csrf={csrfOf(c)} />));
  routes.post("/:id", withAlias, async (c) => {
    const alias = c.var.alias;
    const f = await form(c);
    try {
      const { alias: after } = await services.aliases.update(adminActor(c), alias.id, { recipients: recipientsOf(f.recipients), disabled: disabledOf(f.disabled), description: f.description ?? "" });
      return isHtmx(c) ? c.html(<AliasRow alias={after} csrf={csrfOf(c)} />) : back(c, `/aliases?domain=${alias.domain}`, "Saved.");
    } catch (err) {
      return c.html(<AliasEditRow alias={alias} csrf={csrfOf(c)} values={f} errors={fieldError(err)} />, 422);
    }
  });
  routes.post("/:id/delete", withAlias, async (c) => {
    const alias = c.var.alias;
    await services.aliases.remove(adminActor(c), alias.id);
    return isHtmx(c) ? c.html("") : back(c, `/aliases?domain=${alias.domain}`, `Deleted ${aliasLabel(alias)}@${placeName(alias)}.`);
  });

  // A test message goes through the real forwarding path; the answer page shows each destination's reply.
  routes.get("/:id/test-message", withAlias, (c) => c.html(<TestMessagePage user={user(c)} csrf={csrfOf(c)} alias={c.var.alias} />));
  routes.post("/:id/test-message", withAlias, async (c) => {
    const alias = c.var.alias;
    const f = await form(c);
    try {
      const report = await services.testMessage.send(adminActor(c), alias.id, f.address ?? "");
      return c.html(<TestMessagePage user={user(c)} csrf={csrfOf(c)} alias={alias} report={report} />);
    } catch (err) {
      return c.html(<TestMessagePage user={user(c)} csrf={csrfOf(c)} alias={alias} values={f} errors={fieldError(err)} />, 422);
    }
  });

  routes.get("/:id/vacation", withAlias, async (c) => {
    const alias = c.var.alias;
    const v = await vacationOf(db, alias.id);
    const values = { enabled: v?.enabled ? "on" : "", subject: v?.subject ?? "", message: v?.message ?? "", start: v?.start_date ?? "", end: v?.end_date ?? "" };
    return c.html(<VacationPage user={user(c)} csrf={csrfOf(c)} alias={alias} values={values} ok={okNote(c)} />);
  });
  routes.post("/:id/vacation", withAlias, async (c) => {
    const alias = c.var.alias;
    const f = await form(c);
    try {
      await services.aliases.setVacation(adminActor(c), placeName(alias), alias.pattern, { subject: f.subject ?? "", message: f.message ?? "", start: f.start || null, end: f.end || null, enabled: f.enabled === "on" });
      return back(c, `/aliases/${alias.id}/vacation`, "Vacation reply saved.");
    } catch (err) {
      return c.html(<VacationPage user={user(c)} csrf={csrfOf(c)} alias={alias} values={f} errors={fieldError(err)} />, 422);
    }
  });
  return routes;
}
