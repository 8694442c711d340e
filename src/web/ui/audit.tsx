/** @jsxImportSource hono/jsx */
// /audit: every admin change, newest first, paged.
import { Hono } from "hono";
import { listAudit } from "../../store/audit.ts";
import { AuditPage } from "../../../views/log.tsx";
import type { Env } from "../session.ts";
import { csrfOf, PER_PAGE, pageOf, type UiDeps, user } from "./common.ts";

export function auditRoutes(deps: UiDeps): Hono<Env> {
  return new Hono<Env>().get("/", async (c) => {
    const page = pageOf(c);
    const entries = await listAudit(deps.db, PER_PAGE + 1, (page - 1) * PER_PAGE);
    return c.html(<AuditPage user={user(c)} csrf={csrfOf(c)} entries={entries.slice(0, PER_PAGE)} page={page} more={entries.length > PER_PAGE} />);
  });
}
