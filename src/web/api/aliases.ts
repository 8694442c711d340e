// /aliases: list (filter, stable cursor paging), create, read, change,
// delete, TXT import and export, and "what would happen to mail for X".
import { z } from "@hono/zod-openapi";
import { renameField } from "../../errors.ts";
import { explain } from "../../routing/explain.ts";
import { type AliasRule, aliasLabel, parseAliasName } from "../../aliases/rules.ts";
import type { Route } from "../../routing/resolve.ts";
import { aliasById, aliasesAfter, exportAliases } from "../../store/aliases.ts";
import { parseDomainName } from "../../store/domains.ts";
import { type Api, ApiError, body, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";
import { AliasBody, AliasCreate, AliasId, AliasPatch, AliasQuery, ImportBody, ImportErrors, ImportReportBody, nextCursor, TestBody, TestResult, WaitingFields } from "./schemas.ts";
import { waitingJson } from "../../service/json.ts";

export function aliasJson(rule: AliasRule): z.infer<typeof AliasBody> {
  return { id: rule.id, domain: rule.domain, subdomain: rule.subdomain, name: aliasLabel(rule), matcher: rule.matcher, recipients: rule.recipients, disabled: rule.disabled, description: rule.description };
}

export function verdictJson(address: string, verdict: Route): z.infer<typeof TestResult> {
  return {
    address,
    action: verdict.action,
    reply: verdict.action === "refuse" ? verdict.reply : null,
    alias: verdict.alias ? { id: verdict.alias.id, domain: verdict.alias.domain, name: verdict.alias.label } : null,
    targets:
      verdict.action === "deliver"
        ? verdict.targets.map((t) => (t.kind === "address" ? { kind: t.kind, target: t.address, port: t.port, alias: t.alias.label } : { kind: t.kind, target: t.url, port: null, alias: t.alias.label }))
        : [],
    unverified: verdict.action === "deliver" ? (verdict.unverified ?? []) : [],
    explanation: explain(address, verdict),
  };
}

export function mountAliasRoutes(api: Api, { db, services, router }: ApiDeps): void {
  const existing = async (id: number) => {
    const alias = await aliasById(db, id);
    if (!alias) throw new ApiError(404, "not_found", `alias ${id} does not exist`);
    return alias;
  };

  api.openapi(
    scopedRoute({
      method: "get",
      path: "/aliases",
      tags: ["aliases"],
      summary: "List aliases (oldest first), optionally of one domain or matching a text",
      scope: "read",
      request: { query: AliasQuery },
      responses: { 200: json(z.object({ items: z.array(AliasBody), next_cursor: nextCursor }), "One page") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const page = await aliasesAfter(db, { domain: q.domain ? parseDomainName(q.domain) : null, q: q.q ?? "", after: Number(q.cursor ?? 0), limit: q.limit });
      return c.json({ items: page.aliases.map(aliasJson), next_cursor: page.more ? String(page.aliases.at(-1)!.id) : null }, 200);
    },
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/aliases",
      tags: ["aliases"],
      summary: "Create an alias",
      description:
        "Which outside destinations must confirm first follows delivery.verify_destinations: under tokens (the default), those named by a token without admin scope; under all, every one. waiting_confirmation lists them with the reason; they receive nothing until their owner replies to the verification mail (or uses its code or link). A token without admin scope cannot forward to $1 templates or whole domains outside the managed domains (422).",
      scope: "write",
      extraErrors: [404, 409, 422],
      request: body(AliasCreate),
      responses: { 201: json(z.object({ alias: AliasBody, ...WaitingFields }), "The alias") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const created = await services.aliases
        .add(tokenActor(c), input.domain, { ...parseAliasName(input.name.trim()), recipients: input.recipients, disabled: input.disabled ?? null, description: input.description ?? "" })
        .catch((err: unknown) => Promise.reject(renameField(err, { pattern: "name", matcher: "name", global: "name" })));
      return c.json({ alias: aliasJson(created.alias), ...waitingJson(created.waiting) }, 201);
    },
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/aliases/test",
      tags: ["aliases"],
      summary: "What would happen to mail for an address",
      description: "The routing verdict for a RCPT TO: the targets and the alias that produced each, or the SMTP answer. Nothing is sent.",
      scope: "read",
      request: body(TestBody),
      responses: { 200: json(TestResult, "The verdict") },
    }),
    async (c) => {
      const { address } = c.req.valid("json");
      return c.json(verdictJson(address, await router.route(address)), 200);
    },
  );

  api.openapi(
    scopedRoute({
      method: "get",
      path: "/aliases/export",
      tags: ["aliases"],
      summary: "A domain's (or subdomain's) aliases in Forward Email TXT syntax",
      scope: "read",
      extraErrors: [404],
      request: { query: z.strictObject({ domain: z.string().min(1).max(253) }) },
      responses: { 200: { description: "One TXT value per line", content: { "text/plain": { schema: z.string() } } } },
    }),
    async (c) => c.text((await exportAliases(db, c.req.valid("query").domain)).map((l) => l + "\n").join(""), 200),
  );

  api.openapi(
    scopedRoute({
      method: "post",
      path: "/aliases/import",
      tags: ["aliases"],
      summary: "Import TXT-syntax rules (all or nothing; a dry run unless apply is true)",
      scope: "write",
      extraErrors: [404],
      request: body(ImportBody),
      responses: { 200: json(ImportReportBody, "What was (or would be) written"), 422: json(ImportErrors, "Nothing written: every bad line is listed") },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const { report, waiting } = await services.aliases.import(tokenActor(c), input.domain, input.text, { apply: input.apply, replace: input.replace });
      if (report.errors.length) {
        return c.json({ error: { code: "invalid" as const, message: `nothing imported: ${report.errors.length} bad line(s)`, field: "text" }, errors: report.errors }, 422);
      }
      const aliases = report.aliases.map((a) => ({ name: aliasLabel(a), recipients: a.recipients, disabled: a.disabled }));
      return c.json({ domain: report.domain, applied: report.applied, aliases, port: report.port, ...waitingJson(waiting) }, 200);
    },
  );

  api.openapi(
    scopedRoute({ method: "get", path: "/aliases/{id}", tags: ["aliases"], summary: "One alias", scope: "read", extraErrors: [404], request: { params: AliasId }, responses: { 200: json(AliasBody, "The alias") } }),
    async (c) => c.json(aliasJson(await existing(c.req.valid("param").id)), 200),
  );

  api.openapi(
    scopedRoute({
      method: "patch",
      path: "/aliases/{id}",
      tags: ["aliases"],
      summary: "Change an alias's recipients, state or description",
      scope: "write",
      extraErrors: [404, 422],
      request: { params: AliasId, ...body(AliasPatch) },
      responses: { 200: json(z.object({ alias: AliasBody, ...WaitingFields }), "The alias after the change") },
    }),
    async (c) => {
      const current = await existing(c.req.valid("param").id);
      const p = c.req.valid("json");
      const updated = await services.aliases.update(tokenActor(c), current.id, {
        recipients: p.recipients ?? current.recipients,
        disabled: p.disabled !== undefined ? p.disabled : current.disabled,
        description: p.description ?? current.description,
      });
      return c.json({ alias: aliasJson(updated.alias), ...waitingJson(updated.waiting) }, 200);
    },
  );

  api.openapi(
    scopedRoute({ method: "delete", path: "/aliases/{id}", tags: ["aliases"], summary: "Delete an alias", scope: "write", extraErrors: [404], request: { params: AliasId }, responses: { 204: { description: "Deleted" } } }),
    async (c) => {
      await services.aliases.remove(tokenActor(c), (await existing(c.req.valid("param").id)).id);
      return c.body(null, 204);
    },
  );
}
