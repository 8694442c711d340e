/** @jsxImportSource hono/jsx */
// /queue: the outbound queue, with retry now and delete (htmx swaps the row;
// without JavaScript the page reloads with a note).
import { type Context, Hono } from "hono";
import { UserError } from "../../errors.ts";
import { QueueMessageRow, QueuePage } from "../../../views/queue.tsx";
import { adminActor, type Env } from "../session.ts";
import { back, csrfOf, isHtmx, okNote, type UiDeps, user } from "./common.ts";

export function queueRoutes({ services }: UiDeps): Hono<Env> {
  const routes = new Hono<Env>();
  const queuePage = async (c: Context<Env>, bad: string | null = null) => c.html(<QueuePage user={user(c)} csrf={csrfOf(c)} rows={await services.queue.list()} ok={okNote(c)} bad={bad} />, bad ? 404 : 200);
  /** The message id of the path; anything else is no such message. */
  const idOf = (c: Context<Env>) => {
    const id = Number(c.req.param("id"));
    if (!Number.isSafeInteger(id) || id <= 0) throw new UserError("not_found", `no message ${c.req.param("id")} in the outbound queue`, "id");
    return id;
  };
  /** Runs a change; a message no longer queued (sent meanwhile) is said on the page, or its row goes. */
  const act = async (c: Context<Env>, change: (id: number) => Promise<string>) => {
    try {
      const id = idOf(c);
      const note = await change(id);
      if (!isHtmx(c)) return back(c, "/queue", note);
      const row = await services.queue.find(id);
      return c.html(row ? <QueueMessageRow row={row} csrf={csrfOf(c)} /> : "");
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return isHtmx(c) ? c.html("") : queuePage(c, err.message);
    }
  };
  routes.get("/", (c) => queuePage(c));
  routes.post("/:id/retry", (c) =>
    act(c, async (id) => {
      await services.queue.retry(adminActor(c), id);
      return `Message ${id} is being sent now.`;
    }),
  );
  routes.post("/:id/delete", (c) =>
    act(c, async (id) => {
      await services.queue.remove(adminActor(c), id);
      return `Deleted message ${id} unsent.`;
    }),
  );
  return routes;
}
