// A generated corpus of malformed input for test/fuzz.test.ts: SMTP command
// lines, addresses, messages (headers and MIME) and HTTP bodies. Everything
// comes from one seeded PRNG, so a failing case is found again by its index.

/** mulberry32: a tiny PRNG, good enough to pick cases and reproducible by seed. */
export function seededRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (max: number) => Math.floor(next() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  const text = (length: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789") => Array.from({ length }, () => alphabet[int(alphabet.length)]).join("");
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => int(256)));
  return { next, int, pick, chance, text, bytes };
}

export type Random = ReturnType<typeof seededRandom>;

/** Bytes that must never end a command line early: everything but CR and LF. */
const lineSafe = (b: Buffer) => Buffer.from(b.filter((x) => x !== 0x0d && x !== 0x0a));

// --- addresses --------------------------------------------------------------------------

const DOMAINS = ["fuzz.test", "FUZZ.TEST", "sender.test", "[127.0.0.1]", "[IPv6:::1]", "[IPv6:2001:db8::zz]", "[300.1.2.3]", "[127.0.0.1", "bücher.example", "xn--bcher-kva.example", "xn--zz", "xn--.example", "-bad-.test", "a..b.test", ".lead.test", "trail.test.", "localhost", "", "fuzz.test:25", "例え.テスト"];

/** A mailbox that is odd in one or more ways: quoted local parts, IP literals, IDN, overlong parts. */
export function oddAddress(r: Random): string {
  const local = r.pick([
    () => r.text(1 + r.int(12)),
    () => `"${r.text(4)} ${r.text(3)}"`,
    () => `"\\"${r.text(3)}\\\\"`,
    () => `"${r.text(2)}@${r.text(2)}"`,
    () => r.text(65 + r.int(300)),
    () => "postmaster",
    () => "Postmaster",
    () => "fwd",
    () => "hook",
    () => "fwd+tag",
    () => `${r.text(3)}..${r.text(3)}`,
    () => `.${r.text(3)}`,
    () => "jörg",
    () => "用户",
    () => "a\u0000b",
    () => "%",
    () => "",
  ])();
  const domain = r.chance(0.15) ? `${r.text(63)}.${r.text(64)}.${r.text(200)}.test` : r.pick(DOMAINS);
  return r.pick([`${local}@${domain}`, local, `@${r.text(3)}.test:${local}@${domain}`, `${local}@${domain}@${domain}`, `${local}@`]);
}

// --- SMTP commands ----------------------------------------------------------------------

const VERBS = ["HELO", "EHLO", "MAIL", "RCPT", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "AUTH", "TURN", "ETRN", "XCLIENT", "XFORWARD", "BDAT", "SIZE"];
const PARAMS = ["SIZE=1000", "SIZE=-1", "SIZE=99999999999999999999", "SIZE=", "BODY=8BITMIME", "BODY=BINARYMIME", "BODY=weird", "SMTPUTF8", "SMTPUTF8=yes", "RET=FULL", "RET=HDRS", "ENVID=x+2Bx", "NOTIFY=NEVER,SUCCESS", "NOTIFY=", "ORCPT=rfc822;a@b", "AUTH=<>", "X=Y", "=", "==", "A=B=C"];

/**
 * One command line (no CR or LF inside). DATA, BDAT and STARTTLS are left out:
 * they change what the next bytes mean, and the message cases cover DATA.
 */
export function oddCommand(r: Random): Buffer {
  const kind = r.int(9);
  const bracket = () => r.pick([`<${oddAddress(r)}>`, oddAddress(r), `<${oddAddress(r)}`, `${oddAddress(r)}>`, "<>", "<<>>", ""]);
  const params = () => Array.from({ length: r.int(4) }, () => r.pick(PARAMS)).join(" ");
  switch (kind) {
    case 0:
      return Buffer.from(r.text(1 + r.int(10), "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!@#$%^&*() ") + " " + r.text(r.int(20)));
    case 1:
      return Buffer.from(`${r.pick(VERBS)} ${r.text(r.int(40), "abc <>:@.\"\\[]=+ ")}`);
    case 2:
      return Buffer.from(`${r.pick(["MAIL FROM:", "MAIL FROM: ", "MAIL FROM", "mail from:", "MAIL TO:"])}${bracket()} ${params()}`);
    case 3:
      return Buffer.from(`${r.pick(["RCPT TO:", "RCPT TO: ", "RCPT TO", "rcpt to:", "RCPT FROM:"])}${bracket()} ${params()}`);
    case 4:
      return Buffer.from(`${r.pick(VERBS)} ${"x".repeat(r.pick([513, 1001, 4096, 70_000]))}`);
    case 5:
      return Buffer.concat([Buffer.from(r.pick(VERBS)), Buffer.from([0x20, 0x00]), lineSafe(r.bytes(10)), Buffer.from([0x00])]);
    case 6:
      return Buffer.concat([Buffer.from(`${r.pick(["MAIL FROM:<", "RCPT TO:<", "EHLO ", "HELO "])}`), lineSafe(r.bytes(1 + r.int(60))), Buffer.from(">")]);
    case 7:
      return Buffer.from(r.pick(["", " ", "\t", "EHLO", "HELO", "MAIL", "RCPT", "MAIL FROM:<a@sender.test> SIZE=1 SIZE=2", "EHLO [127.0.0.1]", "EHLO [IPv6:::1]", "EHLO -.-", "VRFY postmaster", "EXPN fwd", "HELP DATA", "NOOP " + "n".repeat(600)]));
    default:
      return Buffer.concat([Buffer.from(`${r.pick(VERBS)} `), lineSafe(Buffer.from(r.text(5, "\u00e9\u00fc\u4e2d\u0080\uffff\ud7ff")))]);
  }
}

// --- messages ---------------------------------------------------------------------------

const CRLF = "\r\n";

/** A message with odd headers, odd MIME, or both; a valid From unless that is the oddity. */
export function oddMessage(r: Random, to: string, serial: number): Buffer {
  const headers: (string | Buffer)[] = [];
  if (!r.chance(0.05)) headers.push(`From: <alice@sender.test>`);
  headers.push(`To: ${to}`, `Subject: fuzz ${serial}`);
  if (!r.chance(0.1)) headers.push(`Message-ID: <fuzz-${serial}-${r.text(8)}@sender.test>`, "Date: Tue, 1 Dec 2026 09:00:00 +0000");
  for (let i = r.int(4); i > 0; i--) headers.push(oddHeader(r));
  const [mimeHeaders, body] = r.chance(0.7) ? oddMime(r) : [[], r.pick([oddBody(r), Buffer.from("hello" + CRLF)])];
  const head = [...headers, ...mimeHeaders].map((h) => (typeof h === "string" ? Buffer.from(h + CRLF) : Buffer.concat([h, Buffer.from(CRLF)])));
  return Buffer.concat([...head, Buffer.from(CRLF), typeof body === "string" ? Buffer.from(body) : body]);
}

function oddHeader(r: Random): string | Buffer {
  switch (r.int(10)) {
    case 0:
      return `X-Folded: ${Array.from({ length: 1 + r.int(300) }, () => r.text(10)).join(CRLF + r.pick([" ", "\t", "   "]))}`;
    case 1:
      return `No colon here ${r.text(20)}`;
    case 2:
      return `X-Huge: ${"h".repeat(r.pick([1000, 20_000, 300_000]))}`;
    case 3:
      return Buffer.concat([Buffer.from("X-Binary: "), lineSafe(r.bytes(200))]);
    case 4:
      return `${r.pick(["From", "Subject", "Content-Type", "Received", "DKIM-Signature", "ARC-Seal", "Authentication-Results"])}: ${r.text(r.int(80), "a=;@<>\"(),: ")}`;
    case 5:
      return `Subject: =?${r.pick(["utf-8", "x-bogus", "", "utf-8*en"])}?${r.pick(["B", "Q", "X"])}?${r.text(20, "A-Za-z=_?*")}?=`;
    case 6:
      return Array.from({ length: r.pick([10, 60]) }, (_, i) => `Received: from h${i}.test by h${i + 1}.test; Tue, 1 Dec 2026 09:00:00 +0000`).join(CRLF);
    case 7:
      return `From: ${r.pick(["", "<>", "a@b, c@d", "\"x\" <", "<alice@sender.test> <bob@sender.test>", oddAddress(r)])}`;
    case 8:
      return ` leading whitespace continuation of nothing ${r.text(10)}`;
    default:
      return `${r.text(1 + r.int(80), "abcXYZ-_:!~")}: value`;
  }
}

function oddBody(r: Random): Buffer {
  return r.pick([
    () => Buffer.from(`bare\nLF\nlines\n${".".repeat(3)}\n.\n..\n`),
    () => Buffer.from("l".repeat(r.pick([999, 5000, 100_000])) + CRLF),
    () => r.bytes(2000),
    () => Buffer.from(`XJS*C4JS*O5CKY{R${r.text(3)}` + CRLF),
    () => Buffer.from(""),
  ])();
}

/** Content headers and a body: deep nesting, broken boundaries or broken encodings. */
function oddMime(r: Random): [string[], string] {
  const boundary = r.pick(["b1", "", "\"quoted b\"", "x".repeat(200), "b=;\"", "ü"]);
  switch (r.int(5)) {
    case 0: {
      const depth = r.pick([3, 40, 2000]);
      let body = `Content-Type: text/plain${CRLF}${CRLF}deep${CRLF}`;
      for (let i = depth; i > 0; i--) body = `Content-Type: multipart/mixed; boundary="n${i}"${CRLF}${CRLF}--n${i}${CRLF}${body}--n${i}--${CRLF}`;
      const [head, ...rest] = body.split(CRLF + CRLF);
      return [head!.split(CRLF), rest.join(CRLF + CRLF)];
    }
    case 1:
      return [["MIME-Version: 1.0", `Content-Type: multipart/${r.pick(["mixed", "alternative", "x-unknown", ""])}; boundary=${boundary}`], `--wrong${CRLF}Content-Type: text/plain${CRLF}${CRLF}x${CRLF}${r.chance(0.5) ? `--${boundary}${CRLF}` : ""}no end`];
    case 2:
      return [
        ["MIME-Version: 1.0", `Content-Type: text/plain; charset=${r.pick(["x-nonexistent", "utf-8", "\"", "utf-7"])}`, `Content-Transfer-Encoding: ${r.pick(["base64", "quoted-printable", "x-foo", "8bit", "binary", ""])}`],
        r.pick(["****not base64****", "=ZZ=4=\r\n=", "SGVsbG8=SGVsbG8", "==", Buffer.from(r.bytes(300)).toString("latin1")]) + CRLF,
      ];
    case 3:
      return [
        ["MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary=b1`],
        `--b1${CRLF}Content-Type: application/octet-stream; name*0*=utf-8''%ZZ; name*1=${r.text(5)}${CRLF}Content-Disposition: attachment; filename*=${r.text(10, "%'\"")}${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${r.text(400, "ABCDEFGHabcdefgh0123+/=!")}${CRLF}--b1--${CRLF}`,
      ];
    default:
      return [["MIME-Version: 9.9", `Content-Type: ${r.pick(["message/rfc822", "text/html", "multipart/digest; boundary=d", "/", ";;;", "image/png; name=\"a\u0000b\""])}`], `--d${CRLF}${CRLF}<html><body>${r.text(50)}${CRLF}--d--${CRLF}`];
  }
}

/** Dot-stuffs a message for DATA (RFC 5321 §4.5.2) and adds the end marker. */
export function dataPayload(message: Buffer): Buffer {
  const stuffed = message.toString("latin1").replace(/(^|\n)\./g, "$1..");
  return Buffer.concat([Buffer.from(stuffed, "latin1"), Buffer.from(stuffed.endsWith("\r\n") ? ".\r\n" : "\r\n.\r\n")]);
}

// --- HTTP bodies ------------------------------------------------------------------------

const FIELDS = ["name", "domain", "local", "alias", "targets", "target", "recipients", "enabled", "disabled", "value", "note", "scope", "text", "apply", "address", "code", "catch_all", "max_targets", "delivery_port", "subject", "message", "days", "limit", "cursor", "username", "password", "next", "greylist.delay", "hostname", "webhook_url", "__proto__", "constructor"];

/** A value of any JSON type, or a huge or odd string. */
function oddValue(r: Random): unknown {
  return r.pick([
    () => r.int(1000) - 500,
    () => 1e308 * 10,
    () => 0.5,
    () => r.chance(0.5),
    () => null,
    () => [r.text(3), 1, null],
    () => ({ nested: { deeper: [r.text(2)] } }),
    () => "",
    () => r.text(r.pick([1, 30, 300])),
    () => "s".repeat(r.pick([10_000, 1_000_000])),
    () => "\u0000\ud800\uffff<script>",
    () => "../../etc/passwd",
    () => "%ZZ%",
  ])();
}

export interface OddBody {
  contentType: string | null;
  body: string | Uint8Array;
}

/** A JSON-ish body: wrong types, unknown fields, broken JSON, deep nesting, huge strings. */
export function oddJsonBody(r: Random): OddBody {
  const object = () => Object.fromEntries(Array.from({ length: r.int(5) }, () => [r.pick(FIELDS), oddValue(r)]));
  const body = r.pick([
    () => JSON.stringify(object()),
    () => JSON.stringify(object()).slice(0, -1 - r.int(5)),
    () => JSON.stringify([object()]),
    () => r.pick(["null", "true", "1", "\"x\"", "", "{", "{\"a\":", "{,}", "{\"a\":1,}", "\u0000"]),
    () => "[".repeat(r.pick([100, 20_000])) + "]".repeat(r.pick([0, 100])),
    () => `{"${r.text(5)}":${"{\"a\":".repeat(5000)}1${"}".repeat(5000)}}`,
  ])();
  const contentType = r.pick(["application/json", "application/json", "application/json; charset=bogus", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", null]);
  return { contentType, body: r.chance(0.05) ? r.bytes(500) : body };
}

/** A form body: urlencoded or multipart with odd fields, broken escapes, huge values or the wrong type. */
export function oddFormBody(r: Random, csrf: string): OddBody {
  const fields = Array.from({ length: r.int(6) }, () => [r.pick(FIELDS), String(oddValue(r))] as const);
  if (r.chance(0.9)) fields.push(["_csrf", csrf]);
  switch (r.int(5)) {
    case 0:
    case 1:
      return { contentType: "application/x-www-form-urlencoded", body: new URLSearchParams(fields as [string, string][]).toString() };
    case 2:
      return { contentType: "application/x-www-form-urlencoded", body: `_csrf=${csrf}&${r.pick(["%ZZ", "a=%", "=&=&", "a=b=c", "%00=%00", "a[]=1&a[x]=2", "x".repeat(2_000_000)])}` };
    case 3: {
      const boundary = r.pick(["fz", "", "x".repeat(100)]);
      const parts = fields.map(([k, v]) => `--fz\r\nContent-Disposition: form-data; name="${k}"${r.chance(0.2) ? '; filename="a.txt"' : ""}\r\n\r\n${v}\r\n`).join("");
      return { contentType: `multipart/form-data; boundary=${boundary}`, body: parts + (r.chance(0.7) ? "--fz--\r\n" : "") };
    }
    default:
      return { contentType: r.pick(["application/json", "text/plain", null, "multipart/form-data"]), body: r.chance(0.5) ? JSON.stringify(Object.fromEntries(fields)) : r.bytes(300) };
  }
}
