import { readFileSync } from "node:fs";
import { explain } from "../routing/explain.ts";
import { createRouter, routerOptions } from "../routing/router.ts";
import { type AliasRule, aliasLabel, parseAliasName, placeName } from "../aliases/rules.ts";
import { exportAliases, findAliasByName, listAliases } from "../store/aliases.ts";
import type { DisabledMode } from "../aliases/rules.ts";
import { CLI_ACTOR, reportWaiting, withServices, withStore } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

const MODES: readonly DisabledMode[] = ["drop", "soft", "hard"];

export async function aliasCommand(ctx: CommandContext): Promise<number> {
  const [action, ...args] = ctx.args;
  const { out } = ctx.io;
  switch (action) {
    case "add": {
      const [domain, name, ...recipients] = args;
      if (!domain || !name) throw new UsageError("usage: mailferry alias add <domain> <name|*|/regex/[g]> [recipient...] [--disabled drop|soft|hard] [--description TEXT]");
      const disabled = ctx.options.disabled;
      if (disabled !== undefined && !MODES.includes(disabled as DisabledMode)) throw new UsageError("--disabled takes drop, soft or hard");
      const { alias, waiting } = await withServices(ctx, (s) =>
        s.aliases.add(CLI_ACTOR, domain, { ...parseAliasName(name), recipients, disabled: (disabled as DisabledMode | undefined) ?? null, description: ctx.options.description ?? "" }),
      );
      out(ctx.json ? JSON.stringify(alias) : `added ${describe(alias)}`);
      reportWaiting(ctx, waiting);
      return 0;
    }
    case "remove": {
      const [domain, name, ...rest] = args;
      if (!domain || !name || rest.length) throw new UsageError("usage: mailferry alias remove <domain> <name|*|/regex/[g]>");
      await withServices(ctx, async (s, store) => s.aliases.remove(CLI_ACTOR, (await findAliasByName(store.db, domain, name)).id));
      out(`removed ${name} from ${domain.toLowerCase()}`);
      return 0;
    }
    case "list": {
      if (args.length > 1) throw new UsageError("usage: mailferry alias list [<domain>] [--json]");
      const rules = await withStore(ctx, (s) => listAliases(s.db, args[0]));
      if (ctx.json) out(JSON.stringify(rules));
      else out(rules.length ? rules.map(describe).join("\n") : "(no aliases)");
      return 0;
    }
    case "test": {
      if (args.length !== 1) throw new UsageError("usage: mailferry alias test <address> [--json]");
      const address = args[0]!;
      const verdict = await withStore(ctx, (s, config) => createRouter(s.db, routerOptions(config)).route(address));
      out(ctx.json ? JSON.stringify(verdict) : explain(address, verdict));
      return 0;
    }
    case "import": {
      const [domain, file, ...rest] = args;
      if (!domain || !file || rest.length) throw new UsageError("usage: mailferry alias import <domain> <file> [--apply] [--replace]");
      let text: string;
      try {
        text = readFileSync(file === "-" ? 0 : file, "utf8");
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      const { report, waiting } = await withServices(ctx, (s) => s.aliases.import(CLI_ACTOR, domain, text, { apply: ctx.flags.has("apply"), replace: ctx.flags.has("replace") }));
      for (const e of report.errors) ctx.io.err(`${file}:${e.line}:${e.column}: ${JSON.stringify(e.token)}: ${e.message}`);
      const summary = `${report.aliases.length} alias${report.aliases.length === 1 ? "" : "es"}${report.port !== null ? ` and delivery port ${report.port}` : ""}`;
      if (report.errors.length) {
        ctx.io.err(`nothing imported: ${report.errors.length} error${report.errors.length === 1 ? "" : "s"}`);
        return 1;
      }
      out(report.applied ? `imported ${summary} into ${report.domain}` : `would import ${summary} into ${report.domain} (dry run; add --apply to write)`);
      reportWaiting(ctx, waiting);
      return 0;
    }
    case "export": {
      if (args.length !== 1) throw new UsageError("usage: mailferry alias export <domain>");
      const lines = await withStore(ctx, (s) => exportAliases(s.db, args[0]!));
      if (lines.length) out(lines.join("\n"));
      return 0;
    }
    case "vacation": {
      const [domain, name, ...rest] = args;
      const { subject, message, start, end } = ctx.options;
      if (!domain || !name || rest.length || !subject || !message) {
        throw new UsageError("usage: mailferry alias vacation <domain> <name> --subject S --message M [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--off]");
      }
      const enabled = !ctx.flags.has("off");
      const saved = await withServices(ctx, (s) => s.aliases.setVacation(CLI_ACTOR, domain, name, { subject, message, start: start ?? null, end: end ?? null, enabled }));
      const window = `${saved.start_date ?? "now"} to ${saved.end_date ?? "until turned off"}`;
      out(`vacation reply for ${name}@${domain.toLowerCase()} ${enabled ? `on, ${window}` : "off"}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown alias command: ${action ?? "(none)"}; try: add, list, remove, test, import, export, vacation`);
  }
}

/** The alias named `hello`, `*` or `/re/` on a domain or subdomain, matched as the store saves names (local parts lower-case). */
function describe(rule: AliasRule): string {
  const state = rule.disabled ? `  [disabled: ${rule.disabled}]` : "";
  return `${placeName(rule)}  ${aliasLabel(rule)} -> ${rule.recipients.join(", ") || "(none)"}${state}`;
}
