// When mailferry may send automatic mail (bounces, vacation replies; RFC 3834 §2) - a table of every case.
import { describe, expect, test } from "bun:test";
import { automaticReplyBlocked, isUnreplyableName } from "../../src/policy/backscatter.ts";
import { parseHeaderBlock } from "../../src/mail/headers.ts";

const headers = (block: string) => parseHeaderBlock(block.replace(/\n/g, "\r\n"));
const FROM = "From: Alice <alice@sender.test>\n";

describe("automatic mail is blocked", () => {
  const cases: [sender: string, block: string, blocked: boolean, why: string][] = [
    ["alice@sender.test", FROM, false, "an ordinary person"],
    ["", FROM, true, "the null sender"],
    ["MAILER-DAEMON@sender.test", FROM, true, "mailer-daemon"],
    ["postmaster@sender.test", FROM, true, "postmaster"],
    ["bounce@sender.test", FROM, true, "bounce"],
    ["bounces+12345@sender.test", FROM, true, "bounces with a tag"],
    ["owner-list@sender.test", FROM, true, "list owner"],
    ["noreply@sender.test", FROM, true, "noreply"],
    ["no-reply@sender.test", FROM, true, "no-reply"],
    ["donotreply@sender.test", FROM, true, "donotreply"],
    ["do-not-reply@sender.test", FROM, true, "do-not-reply"],
    ["alerts+noreply@sender.test", FROM, true, "+noreply suffix"],
    ["alerts-noreply@sender.test", FROM, true, "-noreply suffix"],
    ["alice@sender.test", "From: \n", true, "empty From"],
    ["alice@sender.test", "From: noreply@sender.test\n", true, "no-reply From"],
    ["alice@sender.test", "From: MAILER-DAEMON@sender.test\n", true, "daemon From"],
    ["alice@sender.test", `${FROM}Auto-Submitted: auto-replied\n`, true, "Auto-Submitted other than no"],
    ["alice@sender.test", `${FROM}Auto-Submitted: auto-generated\n`, true, "Auto-Submitted auto-generated"],
    ["alice@sender.test", `${FROM}Auto-Submitted: no\n`, false, "Auto-Submitted: no"],
    ["alice@sender.test", `${FROM}X-Auto-Response-Suppress: DR\n`, true, "X-Auto-Response-Suppress DR"],
    ["alice@sender.test", `${FROM}X-Auto-Response-Suppress: OOF, AutoReply\n`, true, "X-Auto-Response-Suppress AutoReply"],
    ["alice@sender.test", `${FROM}X-Auto-Response-Suppress: All\n`, true, "X-Auto-Response-Suppress All"],
    ["alice@sender.test", `${FROM}X-Auto-Response-Suppress: OOF\n`, false, "X-Auto-Response-Suppress OOF only"],
    ["alice@sender.test", `${FROM}List-Id: <news.sender.test>\n`, true, "List-Id"],
    ["alice@sender.test", `${FROM}List-Unsubscribe: <mailto:u@sender.test>\n`, true, "List-Unsubscribe"],
    ["alice@sender.test", `${FROM}Precedence: bulk\n`, true, "Precedence bulk"],
    ["alice@sender.test", `${FROM}Precedence: list\n`, true, "Precedence list"],
    ["alice@sender.test", `${FROM}Precedence: junk\n`, true, "Precedence junk"],
    ["alice@sender.test", `${FROM}Precedence: first-class\n`, false, "another Precedence"],
    ["alice@sender.test", `${FROM}Content-Type: multipart/report; report-type=delivery-status; boundary=x\n`, true, "a report"],
    ["alice@sender.test", `${FROM}Content-Type: multipart/mixed; boundary=x\n`, false, "ordinary multipart"],
  ];
  for (const [sender, block, blocked, why] of cases) {
    test(`${why}: ${blocked ? "blocked" : "allowed"}`, () => {
      expect(automaticReplyBlocked(sender, headers(block)) !== null).toBe(blocked);
    });
  }

  test("the names themselves", () => {
    expect(isUnreplyableName("listserv@x.test")).toBe(true);
    expect(isUnreplyableName("alice@x.test")).toBe(false);
    expect(isUnreplyableName("noreplyalice@x.test")).toBe(false);
  });
});
