// Static assets served from inside the binary: `with { type: "file" }` makes
// `bun build --compile` embed the file, so the binary runs from any directory.
import type { Hono } from "hono";
import htmxPath from "htmx.org/dist/htmx.min.js" with { type: "file" };
import stylePath from "../../views/style.css" with { type: "file" };
import faviconPath from "../../views/favicon.svg" with { type: "file" };

const ASSETS: Record<string, { path: string; type: string }> = {
  "htmx.min.js": { path: htmxPath, type: "text/javascript; charset=utf-8" },
  "style.css": { path: stylePath, type: "text/css; charset=utf-8" },
  "favicon.svg": { path: faviconPath, type: "image/svg+xml" },
};

export function mountStatic<E extends object>(app: Hono<E>): void {
  app.get("/favicon.ico", (c) => c.redirect("/static/favicon.svg", 301));
  app.get("/static/:name", (c) => {
    const asset = ASSETS[c.req.param("name")];
    if (!asset) return c.notFound();
    return new Response(Bun.file(asset.path), {
      headers: { "content-type": asset.type, "cache-control": "public, max-age=86400", "x-content-type-options": "nosniff" },
    });
  });
}
