// Each setting is declared once (src/config/index.ts); Config, masking, live
// apply and the one service that writes settings are derived from it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, type ConfigInput, loadConfig, loadConfigWithOrigins, masked, SECRET_MASK, SETTINGS, settingKey } from "../src/config/index.ts";
import { UserError } from "../src/errors.ts";
import { settingsService } from "../src/service/settings.ts";
import { createAdmin, createSession } from "../src/store/admins.ts";
import { DATABASE_FILE, openStore, type Store } from "../src/store/db.ts";
import { readSharedSettings } from "../src/store/shared-settings.ts";
import { createToken } from "../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry, type TestMailferry } from "./support/mailferry.ts";

const ADMIN = { name: "admin:alice", ip: "127.0.0.1" };
const opened: { dir: string; store: Store }[] = [];
afterEach(async () => {
  for (const { dir, store } of opened.splice(0)) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The settings service on a fresh data dir, with the configuration a running server would hold. */
async function running(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-settings-"));
  const store = await openStore(join(dir, DATABASE_FILE));
  opened.push({ dir, store });
  const input: ConfigInput = { env: { MAILFERRY_DATA_DIR: dir, MAILFERRY_HOSTNAME: "mx.settings.test", ...env }, cwd: dir };
  const config: Config = loadConfig(input);
  return { dir, store, config, input, settings: settingsService({ db: store.db, config, configInput: input }) };
}

const camelCase = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

describe("Config is derived from the declarations", () => {
  test("every declared setting has its value at its camel-cased place, parsed", () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-settings-"));
    try {
      const config = loadConfig({ env: { MAILFERRY_DATA_DIR: dir, MAILFERRY_SMARTHOST_HOST: "relay.example.test" }, cwd: dir }) as unknown as Record<string, Record<string, unknown>>;
      for (const s of SETTINGS) {
        const value = s.section ? config[s.section]?.[camelCase(s.key)] : (config as Record<string, unknown>)[camelCase(s.key)];
        expect(value, settingKey(s)).not.toBeUndefined();
      }
      expect(config.smtp!.maxSize).toBe(50 * 1024 * 1024);
      expect(config.srs!.domain).toBe(config.hostname as unknown as string);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the secrets are declared: the database URL (it holds a password), the smarthost password and the metrics token", () => {
    expect(SETTINGS.filter((s) => s.secret).map(settingKey)).toEqual(["database.url", "smarthost.password", "metrics.token"]);
  });
});

describe("one rule masks secrets", () => {
  test("a secret that is set shows as the mask in the effective values; empty ones and the rest as they are", () => {
    const { effective } = loadConfigWithOrigins({ env: { MAILFERRY_SMARTHOST_HOST: "relay.example.test", MAILFERRY_SMARTHOST_PASSWORD: "hunter2", MAILFERRY_METRICS_TOKEN: "0123456789abcdef0123" } });
    const shown = Object.fromEntries(effective.map(masked).map((e) => [e.key, e]));
    expect(shown["smarthost.password"]).toMatchObject({ value: SECRET_MASK, shown: SECRET_MASK, origin: "MAILFERRY_SMARTHOST_PASSWORD" });
    expect(shown["metrics.token"]).toMatchObject({ value: SECRET_MASK, shown: SECRET_MASK });
    expect(shown["smarthost.host"]!.shown).toBe("relay.example.test");
    expect(masked({ key: "smarthost.password", value: null, shown: "", origin: "default" }).shown).toBe("");
  });

  test("`config check` masks them, in text and in JSON", () => {
    const env = { ...process.env, MAILFERRY_DATA_DIR: mkdtempSync(join(tmpdir(), "mailferry-settings-")), MAILFERRY_SMARTHOST_PASSWORD: "hunter2", MAILFERRY_METRICS_TOKEN: "0123456789abcdef0123" };
    try {
      for (const args of [[], ["--json"]]) {
        const out = Bun.spawnSync([process.execPath, "src/main.ts", "config", "check", ...args], { cwd: join(import.meta.dir, ".."), env, stdout: "pipe" }).stdout.toString();
        expect(out).toContain(SECRET_MASK);
        expect(out).not.toContain("hunter2");
        expect(out).not.toContain("0123456789abcdef0123");
      }
    } finally {
      rmSync(env.MAILFERRY_DATA_DIR, { recursive: true, force: true });
    }
  });

  test("the service lists the settings masked, while the running configuration keeps the value", async () => {
    const { settings, config } = await running();
    await settings.update(ADMIN, { "smarthost.host": "relay.example.test", "smarthost.password": "hunter2" });
    const listed = (await settings.list()).effective.find((e) => e.key === "smarthost.password")!;
    expect(listed.shown).toBe(SECRET_MASK);
    expect(JSON.stringify(await settings.list())).not.toContain("hunter2");
    expect(config.smarthost?.password).toBe("hunter2");
  });
});

describe("settings.update: validate, write config.toml, audit, apply the live ones", () => {
  test("a live setting applies at once; one that needs a restart is written but not applied", async () => {
    const { settings, config, dir, store } = await running();
    expect(SETTINGS.find((s) => settingKey(s) === "greylist.delay")!.live).toBe(true);
    expect(SETTINGS.find((s) => settingKey(s) === "smtp.max_clients")!.live).toBeFalsy();
    const after = await settings.update(ADMIN, { "greylist.delay": "2m", "smtp.max_clients": "42" });
    expect(config.greylist.delay).toBe(120_000);
    expect(config.smtp.maxClients).toBe(500);
    expect(after.smtp.maxClients).toBe(42);
    expect(readFileSync(join(dir, "config.toml"), "utf8")).toContain('max_clients = "42"');
    const [row] = await store.db.selectFrom("audit_log").selectAll().where("action", "=", "settings.update").execute();
    expect(row).toMatchObject({ actor: "admin:alice", target: "config.toml" });
    expect(JSON.parse(row!.after!)).toEqual({ "greylist.delay": "2m", "smtp.max_clients": "42" });
    // One SQLite server keeps them in config.toml only: nothing goes to the table the PostgreSQL nodes share.
    expect(await readSharedSettings(store.db)).toEqual({});
  });

  test("a smarthost set and removed at run time is used and dropped at once (the whole section applies)", async () => {
    const { settings, config } = await running();
    await settings.update(ADMIN, { "smarthost.host": "relay.example.test", "smarthost.port": "2587" });
    expect(config.smarthost).toMatchObject({ host: "relay.example.test", port: 2587 });
    await settings.update(ADMIN, { "smarthost.host": null });
    expect(config.smarthost).toBeNull();
  });

  test("a bad value or an unknown key writes nothing and is a UserError naming the setting", async () => {
    const { settings, config, dir, store } = await running();
    const refused = async (changes: Record<string, string>) => settings.update(ADMIN, changes).then(() => null, (err: unknown) => err);
    const bad = await refused({ "log.retention": "soon", "greylist.delay": "1m" });
    expect(bad).toBeInstanceOf(UserError);
    expect(bad).toMatchObject({ kind: "invalid", field: "log.retention" });
    expect((bad as Error).message).toContain('config.toml="soon": must be a duration');
    expect(await refused({ "smtp.colour": "blue" })).toMatchObject({ kind: "invalid", field: "smtp.colour" });
    expect(config.greylist.delay).toBe(300_000);
    expect(() => readFileSync(join(dir, "config.toml"))).toThrow();
    expect(await store.db.selectFrom("audit_log").selectAll().execute()).toEqual([]);
  });
});

describe("a running server: the settings page and the API", () => {
  const PASSWORD = "smarthost-password-1";
  const METRICS_TOKEN = "metrics-token-0123456789";
  let dns: DnsServer;
  let mf: TestMailferry;
  let cookie: string;
  let csrf: string;
  let token: string;
  beforeAll(async () => {
    dns = await startDnsServer({});
    mf = await startMailferry({ dns, env: { MAILFERRY_METRICS_TOKEN: METRICS_TOKEN } });
    const db = mf.appliance.store.db;
    const session = await createSession(db, (await createAdmin(db, "admin", "correct horse battery staple")).id, "127.0.0.1", "test");
    cookie = `mf_session=${session.token}`;
    csrf = session.csrf;
    token = (await createToken(db, "settings-admin", "admin")).token;
  });
  afterAll(async () => {
    await mf.stop();
    await dns.close();
  });
  const page = async () => (await fetch(`${mf.httpUrl}settings`, { headers: { cookie } })).text();
  const api = (method: string, body?: unknown) =>
    fetch(`${mf.httpUrl}api/v1/settings`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });

  test("a secret set through the API is masked by the API, the settings page and the audit log, and used at once", async () => {
    const patched = await api("PATCH", { "smarthost.host": "relay.example.test", "smarthost.password": PASSWORD });
    expect(patched.status).toBe(200);
    const items = ((await patched.json()) as { items: { key: string; value: string }[] }).items;
    expect(items).toContainEqual(expect.objectContaining({ key: "smarthost.password", value: SECRET_MASK }));
    expect(items).toContainEqual(expect.objectContaining({ key: "metrics.token", value: SECRET_MASK }));
    expect(mf.appliance.config.smarthost?.password).toBe(PASSWORD);
    const html = await page();
    expect(html).toMatch(/smarthost\.password<\/td><td class="mono">••••••</);
    expect(html).toMatch(/metrics\.token<\/td><td class="mono">••••••</);
    const audit = await mf.appliance.store.db.selectFrom("audit_log").selectAll().where("action", "=", "settings.update").execute();
    for (const text of [JSON.stringify(items), html, JSON.stringify(audit)]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(METRICS_TOKEN);
    }
  });

  test("the page says which offered settings need a restart, and saving keeps a secret left empty", async () => {
    const html = await page();
    const hintOf = (key: string) => new RegExp(`name="${key.replace(".", "\\.")}"[^>]*>\\s*<div class="muted">([^<]*)<`).exec(html)?.[1];
    expect(hintOf("hostname")).toBe("restart needed");
    expect(hintOf("greylist.delay")).not.toContain("restart needed");
    expect(html).not.toContain(PASSWORD);
    const form = Object.fromEntries([...html.matchAll(/<input id="f-[^"]+" name="([^"]+)" type="(?:text|password)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    expect(form["smarthost.password"]).toBe("");
    const saved = await fetch(`${mf.httpUrl}settings`, { method: "POST", body: new URLSearchParams({ ...form, "log.retention": "9d", _csrf: csrf }), headers: { cookie }, redirect: "manual" });
    expect(saved.status).toBe(302);
    expect(mf.appliance.config.log.retention).toBe(9 * 86_400_000);
    expect(mf.appliance.config.smarthost?.password).toBe(PASSWORD);
  });
});
