// Each setting is declared once (src/config/index.ts); Config, masking, live
// apply and the one service that writes settings are derived from it.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, type ConfigInput, loadConfig, loadConfigWithOrigins, masked, SECRET_MASK, SETTINGS, settingKey } from "../src/config/index.ts";
import { UserError } from "../src/errors.ts";
import { settingsService } from "../src/service/settings.ts";
import { DATABASE_FILE, openStore, type Store } from "../src/store/db.ts";

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

  test("the secrets are declared: the smarthost password and the metrics token", () => {
    expect(SETTINGS.filter((s) => s.secret).map(settingKey)).toEqual(["smarthost.password", "metrics.token"]);
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

  test("the service lists the settings masked, while the running configuration keeps the value", async () => {
    const { settings, config } = await running();
    await settings.update(ADMIN, { "smarthost.host": "relay.example.test", "smarthost.password": "hunter2" });
    const listed = settings.list().effective.find((e) => e.key === "smarthost.password")!;
    expect(listed.shown).toBe(SECRET_MASK);
    expect(JSON.stringify(settings.list())).not.toContain("hunter2");
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
