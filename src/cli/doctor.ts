// `mailferry doctor`: gathers facts about this machine and configuration, lets
// the pure checks in doctor/findings.ts judge them, prints ✓ / ! / ✗ with the
// fix. Exit 0 unless something is an error.
import { bindOutcome, clockFacts, databaseFacts, dataDirFacts, dnsFacts, freeBytes, outboundFacts, probeResolver, runningMailferry, servedCertificateFacts } from "../doctor/facts.ts";
import * as judge from "../doctor/findings.ts";
import { type CommandContext, UsageError } from "./command.ts";

export async function doctorCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.length) throw new UsageError("usage: mailferry doctor [--json]");
  const { config } = ctx.config();
  const [smtpBind, httpBind, running, outbound, dns, database] = await Promise.all([
    bindOutcome(config.smtp.host, config.smtp.port),
    bindOutcome(config.http.host, config.http.port),
    runningMailferry(config),
    outboundFacts(config, probeResolver(config)),
    dnsFacts(config),
    databaseFacts(config),
  ]);
  const findings: judge.Finding[] = [
    judge.portFinding({ name: "SMTP", setting: "smtp.port", host: config.smtp.host, port: config.smtp.port, bind: smtpBind }, running),
    judge.portFinding({ name: "HTTP", setting: "http.port", host: config.http.host, port: config.http.port, bind: httpBind }, running),
    judge.outboundFinding(outbound, config.smarthost !== null),
    ...dns.map(judge.dnsFinding),
    judge.clockFinding(clockFacts()),
    ...judge.dataDirFindings(dataDirFacts(config.dataDir)),
    judge.databaseFinding(database),
    judge.certificateFinding(servedCertificateFacts(config)),
    judge.diskFinding(config.dataDir, freeBytes(config.dataDir)),
  ];
  const code = judge.doctorExitCode(findings);
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: code === 0, findings }));
    return code;
  }
  for (const f of findings) ctx.io.out(`${judge.MARKS[f.severity]} ${f.check}: ${f.message}${f.fix ? `\n    fix: ${f.fix}` : ""}`);
  const count = (severity: judge.Severity) => findings.filter((f) => f.severity === severity).length;
  ctx.io.out(`${count("ok")} ok, ${count("warning")} warnings, ${count("error")} errors`);
  return code;
}
