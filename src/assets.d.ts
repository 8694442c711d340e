// Files imported `with { type: "file" }` are their path (embedded when compiled).
declare module "htmx.org/dist/htmx.min.js" {
  const path: string;
  export default path;
}
