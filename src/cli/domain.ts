import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { addDomain, listDomains, removeDomain } from "../store/domains.ts";
import { DATABASE_FILE, openStore, type Store } from "../store/db.ts";
import type { CommandContext } from "./index.ts";
import { UsageError } from "./index.ts";

/** Opens the data dir's database for one command; safe while the server runs (WAL). */
export async function withStore<T>(ctx: CommandContext, fn: (store: Store) => Promise<T>): Promise<T> {
  const { config } = ctx.config();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  const store = await openStore(join(config.dataDir, DATABASE_FILE));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function domainCommand(ctx: CommandContext): Promise<number> {
  const [action, name, ...rest] = ctx.args;
  const needName = () => {
    if (!name || rest.length) throw new UsageError(`usage: mailferry domain ${action} <name>`);
    return name;
  };
  switch (action) {
    case "add": {
      const domain = await withStore(ctx, (s) => addDomain(s.db, needName()));
      ctx.io.out(ctx.json ? JSON.stringify(domain) : `added ${domain.name}`);
      return 0;
    }
    case "remove": {
      const target = needName();
      await withStore(ctx, (s) => removeDomain(s.db, target));
      ctx.io.out(`removed ${target.toLowerCase()}`);
      return 0;
    }
    case "list": {
      if (name) throw new UsageError("usage: mailferry domain list [--json]");
      const domains = await withStore(ctx, (s) => listDomains(s.db));
      if (ctx.json) ctx.io.out(JSON.stringify(domains.map((d) => ({ name: d.name, created_at: new Date(d.created_at).toISOString() }))));
      else ctx.io.out(domains.length ? domains.map((d) => d.name).join("\n") : "(no domains)");
      return 0;
    }
    default:
      throw new UsageError(`unknown domain command: ${action ?? "(none)"}; try: add, list, remove`);
  }
}
