// What an app password may send (src/submission/decide.ts), decided without
// any I/O: the envelope sender and every From address must be the password's
// address (or of its domain), recipients go anywhere up to the limit, and the
// hourly limit answers 451.
import { describe, expect, test } from "bun:test";
import { parseHeaderBlock } from "../../src/mail/headers.ts";
import { formatReply } from "../../src/mail/reply.ts";
import { hourlyLimitDecision, maySendAs, submissionRecipientDecision, submittedMessageDecision, submitterDecision } from "../../src/submission/decide.ts";

const alias = { kind: "address", identity: "hello@example.test" } as const;
const domain = { kind: "domain", identity: "example.test" } as const;
const limits = { messagesPerHour: 2, recipientsPerMessage: 2 };
const headers = (from: string) => parseHeaderBlock(`From: ${from}\r\nSubject: hi\r\n`);

describe("who may be the sender", () => {
  test("an address password sends only as its address (case aside); a domain password as any address of the domain or its subdomains", () => {
    expect(maySendAs(alias, "Hello@Example.TEST")).toBe(true);
    expect(maySendAs(alias, "other@example.test")).toBe(false);
    expect(maySendAs(domain, "anyone@example.test")).toBe(true);
    expect(maySendAs(domain, "anyone@sub.example.test")).toBe(true);
    expect(maySendAs(domain, "anyone@badexample.test")).toBe(false);
    expect(maySendAs(domain, "anyone@[192.0.2.1]")).toBe(false);
  });

  test("MAIL FROM of another address or the null sender: 550 5.7.1 sender_not_allowed", () => {
    expect(submitterDecision(alias, "hello@example.test").reason).toBe("sender_ok");
    expect(formatReply(submitterDecision(alias, "boss@example.test").reply)).toStartWith("550 5.7.1 boss@example.test is not an address");
    expect(submitterDecision(alias, "").reason).toBe("sender_not_allowed");
  });

  test("the From header must be the password's address too, every address of it", () => {
    expect(submittedMessageDecision(alias, { oversized: false, headers: headers("Hello <hello@example.test>") })).toBeNull();
    expect(submittedMessageDecision(alias, { oversized: false, headers: headers("hello@example.test, boss@example.test") })?.reason).toBe("sender_not_allowed");
    expect(submittedMessageDecision(alias, { oversized: false, headers: parseHeaderBlock("Subject: no from\r\n") })?.reason).toBe("bad_from");
    expect(submittedMessageDecision(alias, { oversized: true, headers: [] })?.reason).toBe("oversize");
  });
});

describe("limits", () => {
  test("recipients anywhere, up to the per-message limit: then 452 4.5.3", () => {
    expect(submissionRecipientDecision("friend@gmail.test", 1, limits).reason).toBe("recipient_ok");
    expect(formatReply(submissionRecipientDecision("friend@gmail.test", 2, limits).reply)).toBe("452 4.5.3 Too many recipients (at most 2 per message)");
    expect(submissionRecipientDecision("not an address", 0, limits).reason).toBe("bad_syntax");
  });

  test("the hourly count past the limit: 451 4.7.0", () => {
    expect(hourlyLimitDecision(2, limits)).toBeNull();
    expect(hourlyLimitDecision(3, limits)?.reply.code).toBe(451);
    expect(hourlyLimitDecision(3, limits)?.reason).toBe("rate_limited");
  });
});
