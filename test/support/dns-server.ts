// A loopback DNS server for tests: answers from a fixture object over UDP and
// TCP, like an authoritative server would, so mailferry's real resolver is
// exercised end to end. Names not in the zones get NXDOMAIN; a name without
// the asked type gets NOERROR with no answers (NODATA).
import dgram from "node:dgram";
import net from "node:net";
import * as packet from "dns-packet";

export interface NameRecords {
  A?: string[];
  AAAA?: string[];
  MX?: { priority: number; exchange: string }[];
  /** A string longer than 255 bytes is split into 255-byte strings of one record, as zone tools do. */
  TXT?: (string | string[])[];
  PTR?: string[];
  CNAME?: string;
  ttl?: number;
  /** Fault injection: answer with this error code instead. */
  rcode?: "SERVFAIL" | "REFUSED";
  /** Fault injection: never answer (the resolver times out). */
  silent?: boolean;
  /** Fault injection: answer this many milliseconds late (a slow authoritative server). */
  delayMs?: number;
  /** Answer over UDP with the truncated flag, forcing the client onto TCP. */
  truncate?: boolean;
}

export type Zones = Record<string, NameRecords>;

export interface DnsServer {
  host: string;
  port: number;
  /** For MAILFERRY_DNS_SERVERS / the dns.servers setting. */
  address: string;
  /** Live fixture: edit it between queries. Keys are lower-case names without trailing dot. */
  zones: Zones;
  queries: { name: string; type: string; proto: "udp" | "tcp" }[];
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export async function startDnsServer(zones: Zones, host = "127.0.0.1"): Promise<DnsServer> {
  const queries: DnsServer["queries"] = [];
  const tcp = net.createServer();
  const state = { zones };

  /** Sends at once, or after the asked name's `delayMs`. */
  function later(request: packet.DecodedPacket, send: () => void) {
    const name = request.questions?.[0]?.name.toLowerCase().replace(/\.$/, "");
    const delay = name ? state.zones[name]?.delayMs : undefined;
    if (delay) setTimeout(send, delay);
    else send();
  }

  function respond(request: packet.DecodedPacket, proto: "udp" | "tcp"): Buffer | null {
    const question = request.questions?.[0];
    if (!question) return null;
    const name = question.name.toLowerCase().replace(/\.$/, "");
    queries.push({ name, type: question.type, proto });
    const records = state.zones[name];
    if (records?.silent) return null;
    const base = { type: "response" as const, id: request.id, questions: request.questions };
    if (records?.rcode) return encode({ ...base, flags: RCODE[records.rcode] });
    if (!records) return encode({ ...base, flags: RCODE.NXDOMAIN | packet.AUTHORITATIVE_ANSWER });
    const answers = answersFor(name, question.type, records);
    const full = encode({ ...base, flags: packet.AUTHORITATIVE_ANSWER, answers });
    if (proto === "udp") {
      const opt = request.additionals?.find((a) => a.type === "OPT") as { udpPayloadSize?: number } | undefined;
      const limit = opt?.udpPayloadSize ?? 512;
      if (records.truncate || full.length > limit) return encode({ ...base, flags: packet.AUTHORITATIVE_ANSWER | packet.TRUNCATED_RESPONSE });
    }
    return full;
  }

  tcp.on("connection", (socket) => {
    let buffered = Buffer.alloc(0);
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const size = buffered.readUInt16BE(0);
        const msg = buffered.subarray(2, 2 + size);
        buffered = buffered.subarray(2 + size);
        const request = packet.decode(msg);
        const out = respond(request, "tcp");
        if (!out) continue;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(out.length);
        later(request, () => socket.write(Buffer.concat([length, out])));
      }
    });
  });

  // Same port on UDP and TCP: bind UDP first, then TCP on that port (a new UDP socket if that port is taken).
  let udp: dgram.Socket;
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    udp = dgram.createSocket("udp4");
    port = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, host, () => resolve(udp.address().port));
    });
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    if (ok) break;
    if (attempt > 20) throw new Error("test DNS server: no free port for UDP+TCP");
    await new Promise<void>((resolve) => udp.close(() => resolve()));
  }
  udp.on("message", (msg, rinfo) => {
    let request: packet.DecodedPacket;
    try {
      request = packet.decode(msg);
    } catch {
      return;
    }
    const out = respond(request, "udp");
    if (out) later(request, () => udp.send(out, rinfo.port, rinfo.address));
  });

  return {
    host,
    port,
    address: `${host}:${port}`,
    get zones() {
      return state.zones;
    },
    set zones(z: Zones) {
      state.zones = z;
    },
    queries,
    close: () =>
      new Promise<void>((resolve) => {
        udp.close();
        tcp.close(() => resolve());
      }),
  };
}

function encode(p: packet.Packet): Buffer {
  return packet.encode(p);
}

function answersFor(name: string, type: string, r: NameRecords): packet.Answer[] {
  const ttl = r.ttl ?? 300;
  const base = { name, ttl, class: "IN" as const };
  if (r.CNAME && type !== "CNAME") return [{ ...base, type: "CNAME", data: r.CNAME }];
  switch (type) {
    case "A":
      return (r.A ?? []).map((data) => ({ ...base, type: "A", data }));
    case "AAAA":
      return (r.AAAA ?? []).map((data) => ({ ...base, type: "AAAA", data }));
    case "MX":
      return (r.MX ?? []).map((mx) => ({ ...base, type: "MX", data: { preference: mx.priority, exchange: mx.exchange } }));
    case "TXT":
      return (r.TXT ?? []).map((value) => ({ ...base, type: "TXT", data: typeof value === "string" ? splitTxt(value) : value }));
    case "PTR":
      return (r.PTR ?? []).map((data) => ({ ...base, type: "PTR", data }));
    case "CNAME":
      return r.CNAME ? [{ ...base, type: "CNAME", data: r.CNAME }] : [];
    default:
      return [];
  }
}

/** Split a long TXT value into the 255-byte character-strings of one record. */
export function splitTxt(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(bytes.subarray(i, i + 255).toString("utf8"));
  return parts.length ? parts : [""];
}

/** Publishes zone-file lines (`name. ttl IN TYPE data`, as `mailferry domain dns` and the UI's zone download give them) in `zones`. */
export function publishZoneLines(zones: Zones, text: string): void {
  for (const line of text.split("\n")) {
    const match = line.match(/^(\S+?)\.?\s+\d+\s+IN\s+(MX|TXT|CNAME|A|AAAA|PTR)\s+(.+)$/);
    if (!match) continue;
    const [, name, type, data] = match as unknown as [string, keyof NameRecords, string, string];
    const records: NameRecords = (zones[name.toLowerCase()] ??= {});
    if (type === "MX") {
      const [priority, exchange] = data.split(/\s+/);
      (records.MX ??= []).push({ priority: Number(priority), exchange: exchange!.replace(/\.$/, "") });
    } else if (type === "TXT") {
      (records.TXT ??= []).push([...data.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, "$1")));
    } else if (type === "CNAME") {
      records.CNAME = data.replace(/\.$/, "");
    } else if (type === "A" || type === "AAAA" || type === "PTR") {
      (records[type] ??= []).push(data.replace(/\.$/, ""));
    }
  }
}
