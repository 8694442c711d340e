// /queue: the outbound queue (docs/delivery-and-authentication.md, "Outbound
// queue"): list, retry now, delete.
import { z } from "@hono/zod-openapi";
import { queueItemJson } from "../../service/queue.ts";
import { type Api, json, scopedRoute, tokenActor } from "./common.ts";
import type { ApiDeps } from "./index.ts";

const QueueRecipient = z.object({ address: z.string(), status: z.enum(["pending", "delivered", "failed"]), last_reply: z.string().nullable() }).openapi("QueueRecipient");
const QueueItem = z
  .object({
    id: z.number().int(),
    from: z.string().openapi({ description: 'Envelope sender; "" for DSNs and notices' }),
    submitter: z.string().nullable().openapi({ description: "Who gets the DSN or delay notice; null for mail mailferry writes itself" }),
    recipients: z.array(QueueRecipient),
    attempts: z.number().int(),
    next_attempt_at: z.string(),
    last_error: z.string().nullable(),
    queued_at: z.string(),
    delay_notice_at: z.string().nullable(),
  })
  .openapi("QueueItem");
const QueueId = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) });

export function mountQueueRoutes(api: Api, { services }: ApiDeps): void {
  api.openapi(
    scopedRoute({ method: "get", path: "/queue", tags: ["queue"], summary: "The outbound queue, oldest first", scope: "read", responses: { 200: json(z.object({ items: z.array(QueueItem) }), "Queued messages") } }),
    async (c) => c.json({ items: (await services.queue.list()).map(queueItemJson) }, 200),
  );
  api.openapi(
    scopedRoute({ method: "post", path: "/queue/{id}/retry", tags: ["queue"], summary: "Try a queued message now", scope: "write", extraErrors: [404], request: { params: QueueId }, responses: { 204: { description: "Due now; the attempt has started" } } }),
    async (c) => {
      await services.queue.retry(tokenActor(c), c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
  api.openapi(
    scopedRoute({ method: "delete", path: "/queue/{id}", tags: ["queue"], summary: "Delete a queued message unsent (no DSN)", scope: "write", extraErrors: [404], request: { params: QueueId }, responses: { 204: { description: "Deleted" } } }),
    async (c) => {
      await services.queue.remove(tokenActor(c), c.req.valid("param").id);
      return c.body(null, 204);
    },
  );
}
