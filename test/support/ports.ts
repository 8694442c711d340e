// A free loopback port for a server the test starts but cannot ask to pick one
// itself (rspamd's config, pebble's HTTP-01 port). Another process could take it
// in between; on loopback during a test run that does not happen in practice.
import net from "node:net";

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
