/** @jsxImportSource hono/jsx */
// API access: tokens (the secret shown once) and the API's reference, read
// from the OpenAPI document the API serves.
import type { FC } from "hono/jsx";
import { Csrf, Field, type FieldErrors, Flash, Page, PostButton, when } from "./layout.tsx";

export interface TokenRow {
  name: string;
  scope: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** The parts of an OpenAPI 3.1 document this page shows. */
export interface ApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}
interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: JsonSchema }[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string }>;
}
interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  description?: string;
}

const resolve = (s: JsonSchema, doc: ApiDocument): JsonSchema => (s.$ref ? (doc.components?.schemas?.[s.$ref.split("/").pop()!] ?? {}) : s);

/** A schema's type in a few words: `string`, `array of string`, `"drop" | "soft"`, `Alias`. */
function typeOf(s: JsonSchema, doc: ApiDocument): string {
  if (s.$ref) return s.$ref.split("/").pop()!;
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.anyOf) return s.anyOf.map((x) => typeOf(x, doc)).join(" or ");
  const type = Array.isArray(s.type) ? s.type.join(" or ") : (s.type ?? "any");
  return type === "array" && s.items ? `array of ${typeOf(s.items, doc)}` : type;
}

const Fields: FC<{ schema: JsonSchema; doc: ApiDocument }> = ({ schema, doc }) => {
  const s = resolve(schema, doc);
  const props = Object.entries(s.properties ?? {});
  if (props.length === 0) return <p class="muted">{typeOf(schema, doc)}</p>;
  return (
    <table>
      <tbody>
        {props.map(([name, p]) => (
          <tr>
            <td class="mono">
              {name}
              {s.required?.includes(name) ? "" : "?"}
            </td>
            <td class="mono">{typeOf(p, doc)}</td>
            <td class="muted">{resolve(p, doc).description ?? p.description ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
};

const OperationDoc: FC<{ method: string; path: string; op: Operation; doc: ApiDocument }> = ({ method, path, op, doc }) => {
  const body = op.requestBody?.content["application/json"]?.schema;
  return (
    <details class="panel" id={`${method}-${path}`}>
      <summary>
        <code>
          {method.toUpperCase()} /api/v1{path}
        </code>{" "}
        — {op.summary}
      </summary>
      {op.description && <p style="white-space: pre-line">{op.description}</p>}
      {op.parameters && op.parameters.length > 0 && (
        <>
          <h3>Parameters</h3>
          <table>
            <tbody>
              {op.parameters.map((p) => (
                <tr>
                  <td class="mono">
                    {p.name}
                    {p.required ? "" : "?"}
                  </td>
                  <td class="muted">{p.in}</td>
                  <td class="mono">{p.schema ? typeOf(p.schema, doc) : ""}</td>
                  <td class="muted">{p.description ?? p.schema?.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {body && (
        <>
          <h3>Request body (JSON; unknown fields are refused)</h3>
          <Fields schema={body} doc={doc} />
        </>
      )}
      <h3>Responses</h3>
      <ul>
        {Object.entries(op.responses).map(([code, r]) => (
          <li>
            <code>{code}</code> {r.description}
          </li>
        ))}
      </ul>
    </details>
  );
};

export interface ApiPageProps {
  user: string;
  csrf: string;
  tokens: TokenRow[];
  /** A token just created: its secret, shown this once. */
  created?: { name: string; token: string } | null;
  doc: ApiDocument;
  values?: Record<string, string>;
  errors?: FieldErrors;
  ok?: string | null;
}

export const ApiPage: FC<ApiPageProps> = (p) => {
  const byTag = new Map<string, [string, string, Operation][]>();
  for (const [path, ops] of Object.entries(p.doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = op.tags?.[0] ?? "other";
      byTag.set(tag, [...(byTag.get(tag) ?? []), [method, path, op]]);
    }
  }
  return (
    <Page title="API" section="/api-access" user={p.user} csrf={p.csrf}>
      <h1>API</h1>
      <Flash ok={p.ok} />
      {p.created && (
        <div class="flash ok" role="status">
          <p>
            Token <strong>{p.created.name}</strong> created. Copy it now: it is not shown again.
          </p>
          <pre id="new-token">{p.created.token}</pre>
        </div>
      )}
      <section class="panel">
        <h2>Tokens</h2>
        <p class="muted">
          Send <code>Authorization: Bearer &lt;token&gt;</code>. Scopes: <code>read</code> (GET and address tests), <code>write</code> (changes), <code>admin</code> (also tokens and settings).
        </p>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Scope</th>
                <th>Created</th>
                <th>Last used</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {p.tokens.length === 0 && (
                <tr>
                  <td class="muted" colspan={5}>
                    No tokens yet.
                  </td>
                </tr>
              )}
              {p.tokens.map((t) => (
                <tr>
                  <td class="mono">{t.name}</td>
                  <td>{t.scope}</td>
                  <td>{when(t.created_at)}</td>
                  <td>{t.last_used_at ? when(t.last_used_at) : <span class="muted">never</span>}</td>
                  <td>{t.revoked_at ? <span class="muted">revoked {when(t.revoked_at)}</span> : <PostButton action="/api-access/revoke" csrf={p.csrf} name="name" value={t.name} label="Revoke" />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <form method="post" action="/api-access">
          <Csrf token={p.csrf} />
          <div class="row">
            <Field label="New token name" name="name" value={p.values?.name} errors={p.errors} placeholder="deploy" maxlength={64} />
            <label>
              Scope
              <select name="scope">
                {["read", "write", "admin"].map((s) => (
                  <option value={s} selected={(p.values?.scope ?? "read") === s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <div>
              <button type="submit">Create token</button>
            </div>
          </div>
        </form>
      </section>
      <h2>Reference</h2>
      <p class="muted">
        JSON under <code>/api/v1</code>; errors are <code>{'{"error": {"code", "message", "field"}}'}</code>. The OpenAPI 3.1 document is at{" "}
        <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.
      </p>
      {[...byTag].map(([tag, ops]) => (
        <section>
          <h3>{tag}</h3>
          {ops.map(([method, path, op]) => (
            <OperationDoc method={method} path={path} op={op} doc={p.doc} />
          ))}
        </section>
      ))}
    </Page>
  );
};
