// Server time of the admin pages with 1,000 aliases (target: < 50 ms each).
// Run: node_modules/.bin/bun bench/ui.ts
import { startDnsServer } from "../test/support/dns-server.ts";
import { startMailferry } from "../test/support/mailferry.ts";
import { createAdmin, createSession } from "../src/store/admins.ts";

const dns = await startDnsServer({});
const lines = Array.from({ length: 1000 }, (_, i) => `forward-email=user${i}:person${i}@dest.test`);
const mf = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": lines.join("\n") } });
const admin = await createAdmin(mf.appliance.store.db, "admin", "correct horse battery staple");
const { token } = await createSession(mf.appliance.store.db, admin.id, "127.0.0.1", "bench");
const cookie = `mf_session=${token}`;
const pages = ["/", "/domains", "/domains/example.test", "/aliases", "/aliases?q=user99", "/aliases?page=20", "/aliases/test?address=user500@example.test", "/log", "/lists", "/audit", "/settings", "/account"];
console.log("page".padEnd(44), "median ms", "p95 ms");
for (const path of pages) {
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    const res = await fetch(`${mf.httpUrl}${path.slice(1)}`, { headers: { cookie } });
    await res.text();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(path.padEnd(44), times[15]!.toFixed(1).padStart(9), times[28]!.toFixed(1).padStart(6));
}
await mf.stop();
await dns.close();
