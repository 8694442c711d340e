// Senders that are never greylisted, because greylisting them only delays
// mail: large mailbox providers and email service providers retry every
// deferred message from queues that are run properly, so a 4xx filters
// nothing and a one-time code arrives five minutes late. A client counts
// only when its forward-confirmed reverse-DNS name (identity.ts) is under one
// of these domains, which only the provider can arrange.
//
// Compiled from postgrey's `postgrey_whitelist_clients` (the whitelist that
// ships with postgrey), Forward Email's allowlist (its FAQ, "Do you have an
// allowlist" and "What is your allowlist criteria") and its list of brand and
// corporate TLDs, and the reverse-DNS names each provider's outbound hosts
// use. An admin extends the list with allowlist entries and overrides an entry
// with a denylist entry (the denylist is checked first); see
// docs/delivery-and-authentication.md.

/** Registrable domains whose verified hosts (and the hosts under them) skip greylisting. */
export const PROVIDER_DOMAINS: ReadonlySet<string> = new Set([
  // Google (Gmail, Workspace): mail-yw1-f41.google.com
  "google.com", "googlemail.com",
  // Microsoft (Outlook.com, Hotmail, Microsoft 365): *.outbound.protection.outlook.com
  "outlook.com", "hotmail.com", "microsoft.com", "outlook.de",
  // Yahoo and AOL (one infrastructure)
  "yahoo.com", "yahoodns.net", "aol.com",
  // Apple iCloud: *.me.com, *.icloud.com
  "apple.com", "icloud.com", "me.com",
  // GMX, web.de, 1&1/IONOS: mout.gmx.net, mout.web.de, mout.kundenserver.de
  "gmx.net", "gmx.com", "web.de", "kundenserver.de",
  // Mail.ru and Yandex
  "mail.ru", "smailru.net", "yandex.net", "yandex.ru",
  // Zoho, Proton, Fastmail
  "zoho.com", "zoho.eu", "zohomail.com", "protonmail.ch", "proton.ch", "messagingengine.com", "fastmail.com",
  // Amazon SES and Amazon's own mail
  "amazonses.com", "amazon.com",
  // SendGrid, Mailgun, Mailjet
  "sendgrid.net", "mailgun.net", "mailgun.org", "mailgun.com", "mailjet.com",
  // Mailchimp and Mandrill
  "mcsv.net", "mcdlv.net", "rsgsv.net", "mailchimp.com", "mandrillapp.com",
  // Postmark, SparkPost, Brevo (Sendinblue)
  "mtasv.net", "sparkpostmail.com", "sendinblue.com", "brevo.com",
  // Salesforce (and Marketing Cloud, formerly ExactTarget)
  "salesforce.com", "exacttarget.com",
  // Others postgrey lists among the senders that always retry
  "facebook.com", "github.net", "twitter.com", "ebay.com", "mimecast.com", "smtp2go.com",
]);

/**
 * ICANN brand TLDs (registry agreements with Specification 13): only the brand
 * registers names under them, so a verified host there is the brand's own. A
 * subset of Forward Email's brand and corporate TLD list, without the open or
 * generic TLDs it also holds (such as .bond or .lifestyle), where anyone can
 * register a name.
 */
export const BRAND_TLDS: ReadonlySet<string> = new Set([
  "google", "goog", "gmail", "youtube", "android", "chrome",
  "apple",
  "microsoft", "azure", "bing", "hotmail", "office", "windows", "xbox", "skype",
  "amazon", "aws", "kindle",
  "yahoo", "aol", "yandex", "gmx",
  "ibm", "intel", "cisco", "oracle", "dell", "sap", "hitachi", "fujitsu", "toshiba", "panasonic", "sony", "samsung", "canon", "nikon", "epson", "philips", "bosch", "nokia", "ericsson",
  "bmw", "audi", "toyota", "honda", "nissan", "ferrari", "volvo", "volkswagen",
  "barclays", "hsbc", "citi", "chase", "jpmorgan", "amex", "americanexpress", "visa", "bnpparibas", "axa",
  "bbc", "bloomberg", "netflix", "nike", "lego", "ups", "fedex", "dhl", "deloitte", "kpmg", "pwc", "mckinsey", "accenture",
  "alibaba", "alipay", "taobao", "baidu", "ntt", "kddi", "softbank", "orange", "sfr",
]);

/** Why a verified host skips greylisting: the listed provider domain or brand TLD it is under. */
export type KnownSender = { skipped: "provider" | "brand_tld"; match: string };

/** The provider domain or brand TLD a forward-confirmed host name is under, else null (an unverified client never matches). */
export function knownSender(verifiedHost: string | null): KnownSender | null {
  if (!verifiedHost) return null;
  const labels = verifiedHost.toLowerCase().replace(/\.$/, "").split(".");
  // A host needs a name under the TLD: "google" alone is not a mail host.
  const tld = labels.at(-1)!;
  if (labels.length > 1 && BRAND_TLDS.has(tld)) return { skipped: "brand_tld", match: tld };
  for (let i = 0; i < labels.length - 1; i++) {
    const suffix = labels.slice(i).join(".");
    if (PROVIDER_DOMAINS.has(suffix)) return { skipped: "provider", match: suffix };
  }
  return null;
}
