// A routing verdict in words, for the "test an address" box, the API and the CLI.
import { formatReply } from "../mail/reply.ts";
import type { Route } from "./resolve.ts";

/** The human form of a routing verdict: what happens and which alias decided it. */
export function explain(address: string, verdict: Route): string {
  const via = (alias?: { label: string; domain: string }) => (alias ? ` (alias ${alias.label} on ${alias.domain})` : "");
  switch (verdict.action) {
    case "refuse":
      return `${address}: refused with ${formatReply(verdict.reply)}${via(verdict.alias)}`;
    case "drop":
      return `${address}: accepted and discarded${via(verdict.alias)}`;
    case "deliver": {
      const lines = verdict.targets.map((t) => `  ${t.kind === "address" ? t.address : t.url}  via ${t.alias.label} on ${t.alias.domain}${t.kind === "address" && t.port ? ` (port ${t.port})` : ""}`);
      const pending = (verdict.unverified ?? []).map((a) => `  ${a}  left out: not verified yet`);
      return [`${address}: deliver to ${verdict.targets.length} target${verdict.targets.length === 1 ? "" : "s"}`, ...lines, ...pending].join("\n");
    }
  }
}
