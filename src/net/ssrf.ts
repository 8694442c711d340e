// Webhook URLs must not reach into the server's own network (SSRF): loopback,
// private, link-local (cloud metadata) and other special addresses are refused
// unless the admin explicitly allows private targets.
import net from "node:net";

const BLOCKED = new net.BlockList();
for (const [address, prefix] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) BLOCKED.addSubnet(address, prefix, "ipv4");
// IPv6 forms that carry an IPv4 address, which may be a private one: IPv4-compatible
// ::/96 (RFC 4291 §2.5.5.1, also :: and ::1), NAT64 64:ff9b::/96 (RFC 6052),
// 6to4 2002::/16 (RFC 3056) and Teredo 2001::/32 (RFC 4380).
for (const [address, prefix] of [
  ["::", 96], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["64:ff9b::", 96], ["2002::", 16], ["2001::", 32],
] as const) BLOCKED.addSubnet(address, prefix, "ipv6");

export function isPrivateAddress(ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return isPrivateAddress(mapped[1]!);
  const family = net.isIP(ip);
  if (family === 0) return false;
  return BLOCKED.check(ip, family === 6 ? "ipv6" : "ipv4");
}

/** The host of a URL as an IP literal (brackets removed), or null when it is a name. */
export function literalHost(url: URL): string | null {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return net.isIP(host) ? host : null;
}

/** Why a webhook URL may not be used, judged without DNS (at save time), or null. */
export function webhookUrlProblem(url: string): string | null {
  const parsed = new URL(url);
  const literal = literalHost(parsed);
  if ((literal && isPrivateAddress(literal)) || /^localhost\.?$/i.test(parsed.hostname) || parsed.hostname.endsWith(".localhost")) {
    return `${url} points to a loopback, private or link-local address (set webhooks.allow_private to allow it)`;
  }
  return null;
}
