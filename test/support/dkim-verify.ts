// dkimpy (python3-dkim), a DKIM implementation independent of the mailauth
// library mailferry signs with, verifies a message's top signature, reading
// the public key from the test DNS server over real DNS (dnspython, TCP); and
// the message's ARC chain the same way.
import type { DnsServer } from "./dns-server.ts";

const PYTHON = "/usr/bin/python3";

/** Whether dkimpy and dnspython are installed (Debian: python3-dkim). */
export const hasDkimpy = Bun.spawnSync([PYTHON, "-c", "import dkim, dns.query"]).exitCode === 0;

const SCRIPT = `
import json, sys, dkim, dns.message, dns.query, dns.rdatatype
host, port = sys.argv[1], int(sys.argv[2])
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    answer = dns.query.tcp(dns.message.make_query(name, "TXT"), host, port=port, timeout=timeout)
    for rrset in answer.answer:
        for record in rrset:
            if record.rdtype == dns.rdatatype.TXT:
                return b"".join(record.strings)
    return None
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
ok = d.verify(idx=0, dnsfunc=dnsfunc)
arc, _, _ = dkim.arc_verify(msg, dnsfunc=dnsfunc)
# Without a DKIM-Signature d.domain stays None and d.selector is dkimpy's default, a str.
text = lambda value: value.decode() if isinstance(value, bytes) else value
print(json.dumps({"pass": bool(ok), "domain": text(d.domain) if d.domain else None, "selector": text(d.selector) if d.domain else None, "arc": arc.decode()}))
`;

export interface DkimpyVerdict {
  pass: boolean;
  /** d= and s= of the signature checked. */
  domain: string | null;
  selector: string | null;
  /** The ARC chain's validation: pass, fail or none (no ARC set). */
  arc: string;
}

/** Runs asynchronously: the test DNS server it queries lives in this process. */
export async function dkimpyVerify(raw: Buffer, dns: DnsServer): Promise<DkimpyVerdict> {
  const proc = Bun.spawn([PYTHON, "-c", SCRIPT, dns.host, String(dns.port)], { stdin: new Blob([raw]), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`dkimpy failed (${code}): ${stderr}`);
  return JSON.parse(stdout) as DkimpyVerdict;
}
