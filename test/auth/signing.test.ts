// Signing and sealing from a header block and body hash taken once must give
// exactly what mailauth's streaming dkimSign and sealMessage give (RSA
// PKCS#1 v1.5 signatures are deterministic, so the bytes can be compared).
import { expect, test } from "bun:test";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { sealMessage } from "mailauth/lib/arc";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { bodyHasher, SIGNED_HEADERS, sealAndSign, sealHead, signMessage } from "../../src/auth/dkim.ts";
import { headerBlockEnd } from "../../src/mail/headers.ts";
import { type SigningKey } from "../../src/mail/dkim-key.ts";

const pem = () => generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
const key: SigningKey = { domain: "alias.test", selector: "mailferry", privateKey: pem() };
const previousHop = { signingDomain: "prevhop.test", selector: "arc", privateKey: pem() };
const signTime = new Date("2026-11-26T03:00:00Z");
const seal = { authResults: "mx.alias.test;\r\n spf=pass smtp.mailfrom=someone@sender.test;\r\n dmarc=pass header.from=sender.test", cv: "none" };

const body = "Hello,\r\n\r\n  some   text with   spaces  \r\nand trailing blank lines\r\n\r\n\r\n";
const messages: Record<string, () => Promise<Buffer>> = {
  "a plain message": async () => Buffer.from(`From: Someone <someone@sender.test>\r\nTo: hello@alias.test\r\nSubject: plain\r\nMessage-ID: <1@sender.test>\r\n\r\n${body}`),
  "bare LF line breaks": async () => Buffer.from(`From: someone@sender.test\nTo: hello@alias.test\nSubject: bare\n  folded\n\n${body.replace(/\r\n/g, "\n")}`),
  "mixed line breaks": async () => Buffer.from(`From: someone@sender.test\r\nSubject: mixed\n\r\nline one\nline two\r\n`),
  "no body": async () => Buffer.from("From: someone@sender.test\r\nSubject: headers only\r\n"),
  "an empty body": async () => Buffer.from("From: someone@sender.test\r\nSubject: empty\r\n\r\n"),
  "an ARC set from a previous hop": async () => {
    const original = Buffer.from(`From: someone@sender.test\r\nTo: list@prevhop.test\r\nSubject: arc\r\n\r\n${body}`);
    const set = await sealMessage(original, { ...previousHop, authResults: "prevhop.test; spf=pass", cv: "none", signTime });
    return Buffer.concat([set, original]);
  },
};

for (const [name, make] of Object.entries(messages)) {
  test(`sealAndSign equals sealMessage then dkimSign: ${name}`, async () => {
    const message = await make();
    const cv = name.includes("ARC set") ? "pass" : seal.cv;
    const arc = await sealMessage(message, { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, authResults: seal.authResults, cv, signTime } as never);
    const sealed = Buffer.concat([arc, message]);
    const signature = { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, canonicalization: "relaxed/relaxed", headerList: SIGNED_HEADERS };
    const { signatures } = await dkimSign(sealed, { ...signature, signTime, signatureData: [signature] });
    const expected = Buffer.concat([Buffer.from(signatures), sealed]);
    expect(arc.length).toBeGreaterThan(0);
    expect((await sealAndSign(message, key, { ...seal, cv }, signTime)).toString("latin1")).toBe(expected.toString("latin1"));
  });
}

test("signMessage equals dkimSign", async () => {
  const message = await messages["a plain message"]!();
  const signature = { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, canonicalization: "relaxed/relaxed", headerList: SIGNED_HEADERS };
  const { signatures } = await dkimSign(message, { ...signature, signTime, signatureData: [signature] });
  expect(await signMessage(message, key, signTime)).toBe(signatures);
});

test("a key that cannot sign is an error naming the domain", async () => {
  const message = await messages["a plain message"]!();
  expect(sealAndSign(message, { ...key, privateKey: "not a key" }, seal, signTime)).rejects.toThrow("ARC sealing for alias.test failed: ");
});

/** A message's header block and streamed body hash, as the delivery path hands them to sealHead. */
function headAndHash(message: Buffer) {
  const end = headerBlockEnd(message);
  const hash = bodyHasher();
  hash.update(message.subarray(end));
  return { head: message.subarray(0, end), bodyHash: hash.digest() };
}

test("sealHead without DKIM adds exactly the ARC set sealMessage makes; with DKIM, what sealAndSign adds", async () => {
  const message = await messages["a plain message"]!();
  const { head, bodyHash } = headAndHash(message);
  const arc = await sealMessage(message, { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, authResults: seal.authResults, cv: seal.cv, signTime } as never);
  const sealed = await sealHead(head, bodyHash, key, seal, false, signTime);
  expect(sealed).toMatchObject({ sealed: true, dkimSigned: false });
  expect(sealed.head.toString("latin1")).toBe(Buffer.concat([arc, head]).toString("latin1"));
  const signed = await sealHead(head, bodyHash, key, seal, true, signTime);
  expect(signed).toMatchObject({ sealed: true, dkimSigned: true });
  expect(Buffer.concat([signed.head, message.subarray(head.length)]).toString("latin1")).toBe((await sealAndSign(message, key, seal, signTime)).toString("latin1"));
});

test("a chain whose newest seal says cv=fail is not sealed again (RFC 8617 section 5.1), and that is no error", async () => {
  const original = await messages["a plain message"]!();
  const failed = await sealMessage(original, { ...previousHop, authResults: "prevhop.test; spf=fail", cv: "none", signTime });
  const withFailedSeal = Buffer.from(failed.toString().replace("cv=none", "cv=fail") + original.toString());
  const { head, bodyHash } = headAndHash(withFailedSeal);
  const result = await sealHead(head, bodyHash, key, { ...seal, cv: "fail" }, false, signTime);
  expect(result).toMatchObject({ sealed: false, dkimSigned: false });
  expect(result.head.toString("latin1")).toBe(head.toString("latin1"));
});

/** `message` with `count` ARC sets of the previous hop on top, each sealing the one before (cv=pass after the first). */
async function withPreviousSets(message: Buffer, count: number): Promise<Buffer> {
  for (let i = 0; i < count; i++) {
    const set = await sealMessage(message, { ...previousHop, authResults: `prevhop.test; spf=pass; i-${i}`, cv: i === 0 ? "none" : "pass", signTime } as never);
    message = Buffer.concat([set, message]);
  }
  return message;
}

/** What sealHead puts on a message (no DKIM), against the ARC set sealMessage makes for it. */
async function sealedBoth(message: Buffer, cv: string) {
  const { head, bodyHash } = headAndHash(message);
  const expected = await sealMessage(message, { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, authResults: seal.authResults, cv, signTime } as never);
  const sealed = await sealHead(head, bodyHash, key, { ...seal, cv }, false, signTime);
  return { expected: Buffer.concat([expected, head]).toString("latin1"), actual: sealed.head.toString("latin1"), sealed: sealed.sealed };
}

test("a chain of two earlier sets is sealed as sealMessage seals it (instance 3, over both sets)", async () => {
  const message = await withPreviousSets(await messages["a plain message"]!(), 2);
  const { expected, actual, sealed } = await sealedBoth(message, "pass");
  expect(actual).toContain("ARC-Seal: i=3;");
  expect(sealed).toBe(true);
  expect(actual).toBe(expected);
});

test("a valid earlier chain that our checks failed (cv=fail) is sealed as sealMessage seals it: the seal covers our set only", async () => {
  const message = await withPreviousSets(await messages["a plain message"]!(), 1);
  const { expected, actual, sealed } = await sealedBoth(message, "fail");
  expect(actual).toContain("ARC-Seal: i=2; a=rsa-sha256; t=");
  expect(actual).toContain("cv=fail");
  expect(sealed).toBe(true);
  expect(actual).toBe(expected);
});

test("a broken chain (a seal without its message signature) is sealed as sealMessage seals it", async () => {
  const sealedOnce = (await withPreviousSets(await messages["a plain message"]!(), 1)).toString("latin1");
  const broken = Buffer.from(sealedOnce.replace(/ARC-Message-Signature:[^]*?\r\n(?=[^ \t])/, ""), "latin1");
  expect(broken.toString("latin1")).not.toContain("ARC-Message-Signature");
  const { expected, actual, sealed } = await sealedBoth(broken, "fail");
  expect(sealed).toBe(true);
  expect(actual).toBe(expected);
});

test("a chain of 50 sets takes no 51st (RFC 8617 section 4.2.1), and that is no error", async () => {
  const full = await withPreviousSets(await messages["a plain message"]!(), 50);
  const { head, bodyHash } = headAndHash(full);
  const result = await sealHead(head, bodyHash, key, { ...seal, cv: "pass" }, false, signTime);
  expect(result).toMatchObject({ sealed: false, dkimSigned: false });
  expect(result.head.toString("latin1")).toBe(head.toString("latin1"));
});

test("the RSA signatures are made off the main thread: sealing 40 copies costs it less than their signatures alone would", async () => {
  const { head, bodyHash } = headAndHash(await messages["a plain message"]!());
  await sealHead(head, bodyHash, key, seal, true, signTime); // the key parsed, the code compiled
  const before = process.threadCpuUsage();
  await Promise.all(Array.from({ length: 40 }, () => sealHead(head, bodyHash, key, seal, true, signTime)));
  const sealing = cpuMs(process.threadCpuUsage(before));
  // The same number of RSA signatures (three a copy) made on this thread: sealing with them
  // here would cost that and more (canonicalization, formatting); here it is about 0.4 of it,
  // with mailauth's synchronous signing it was 1.7.
  const privateKey = createPrivateKey(key.privateKey);
  const start = process.threadCpuUsage();
  for (let i = 0; i < 120; i++) sign("sha256", head, privateKey);
  const signing = cpuMs(process.threadCpuUsage(start));
  expect(sealing).toBeLessThan(signing);
});

const cpuMs = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000;
