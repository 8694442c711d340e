// The pure decisions of delivery: the DATA answer and destination replies.
import { describe, expect, test } from "bun:test";
import { dataAnswer } from "../../src/delivery/outcome.ts";
import { parseReply } from "../../src/delivery/smtp-client.ts";
import { reply } from "../../src/mail/reply.ts";

const outcome = (target: string, code: number, text = "x") => ({ target, originalRecipient: "a@example.test", reply: reply(code, `${String(code)[0]}.0.0`, text), remoteMta: null });

describe("dataAnswer", () => {
  test("all accepted: 250", () => {
    expect(dataAnswer([outcome("a", 250), outcome("b", 250)], 0).reply.code).toBe(250);
  });
  test("a temporary failure wins over success and permanent failures: the lowest temporary code", () => {
    const a = dataAnswer([outcome("a", 250), outcome("b", 550), outcome("c", 452, "full"), outcome("d", 421, "later")], 0);
    expect(a.reply).toEqual(reply(421, "4.0.0", "later"));
    expect(a.bounce).toEqual([]);
  });
  test("only permanent failures and nothing accepted: the lowest permanent code, no bounce of our own", () => {
    const a = dataAnswer([outcome("b", 552), outcome("c", 550, "no such user")], 0);
    expect(a.reply.text).toBe("no such user");
    expect(a.bounce).toEqual([]);
  });
  test("permanent failures next to success (now or in an earlier attempt): 250 and a bounce", () => {
    expect(dataAnswer([outcome("a", 250), outcome("b", 550)], 0).bounce.map((b) => b.target)).toEqual(["b"]);
    const retry = dataAnswer([outcome("b", 550)], 1);
    expect(retry.reply.code).toBe(250);
    expect(retry.bounce.map((b) => b.target)).toEqual(["b"]);
  });
});

describe("parseReply", () => {
  test("code, enhanced code and text of one or several lines", () => {
    expect(parseReply("550 5.1.1 No such user")).toEqual(reply(550, "5.1.1", "No such user"));
    expect(parseReply("550-5.7.1 Line one\n550 5.7.1 line two")).toEqual(reply(550, "5.7.1", "Line one line two"));
    expect(parseReply("451 try later")).toEqual(reply(451, "4.0.0", "try later"));
  });
  test("a 5xx asking to defer or slow down counts as 421", () => {
    expect(parseReply("550 5.7.28 Please slow down, rate limited")).toEqual(reply(421, "4.7.28", "Please slow down, rate limited"));
    expect(parseReply("554 Message deferred")).toEqual(reply(421, "4.0.0", "Message deferred"));
  });
});
