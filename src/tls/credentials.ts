// The STARTTLS certificate: the configured one, else a self-signed one made
// on first start and kept in the data dir (senders' MTAs do not verify MX
// certificates unless MTA-STS/DANE says so, so self-signed still encrypts).
// With ACME (./acme.ts) the self-signed one serves until the CA's is issued.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";
import type { Config } from "../config/index.ts";
import { ConfigError, envName, readSettingFile } from "../config/index.ts";

export interface TlsCredentials {
  key: Buffer;
  cert: Buffer;
  certPath: string;
  selfSigned: boolean;
}

/** Where the listeners get their certificate, and hear of a new one (ACME renewals). */
export interface CertificateSource {
  current(): TlsCredentials;
  onChange(listener: (credentials: TlsCredentials) => void): void;
}

/** A certificate that never changes while running (configured or self-signed). */
export function fixedCertificate(credentials: TlsCredentials): CertificateSource {
  return { current: () => credentials, onChange: () => {} };
}

export interface ParsedCertificate {
  /** DNS names of the subjectAltName extension. */
  names: string[];
  /** Milliseconds since the epoch. */
  notAfter: number;
  serial: string;
  issuer: string;
}

/** What a PEM certificate (the first of a chain) is for and until when; throws when it is not one. */
export function parseCertificate(pem: Buffer | string): ParsedCertificate {
  const cert = new X509Certificate(pem);
  const names = (cert.subjectAltName ?? "")
    .split(", ")
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4).toLowerCase());
  return { names, notAfter: Date.parse(cert.validTo), serial: cert.serialNumber, issuer: cert.issuer };
}

/** True when `key` is the private key of `cert` (a crash between writing the two must not pair them wrongly). */
export function keyMatches(cert: Buffer | string, key: Buffer | string): boolean {
  try {
    return new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch {
    return false;
  }
}

export const SELF_SIGNED_CERT = "tls/selfsigned.crt";
export const SELF_SIGNED_KEY = "tls/selfsigned.key";

export function loadTlsCredentials(config: Config): TlsCredentials {
  const { cert, key } = config.tls;
  if (cert && key) {
    const credentials = { cert: readSettingFile(cert, { section: "tls", key: "cert" }), key: readSettingFile(key, { section: "tls", key: "key" }), certPath: cert, selfSigned: false };
    try {
      new X509Certificate(credentials.cert);
    } catch {
      const name = envName({ section: "tls", key: "cert" });
      throw new ConfigError(name, `${name}=${JSON.stringify(cert)}: not a PEM certificate`);
    }
    return credentials;
  }
  const certPath = join(config.dataDir, SELF_SIGNED_CERT);
  const keyPath = join(config.dataDir, SELF_SIGNED_KEY);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    const generated = generateSelfSigned(config.hostname);
    mkdirSync(join(config.dataDir, "tls"), { recursive: true, mode: 0o700 });
    writeFileSync(keyPath, generated.key, { mode: 0o600 });
    writeFileSync(certPath, generated.cert, { mode: 0o644 });
  }
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, selfSigned: true };
}

/** A 2048-bit RSA certificate for `hostname`, valid ten years. */
export function generateSelfSigned(hostname: string): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  // Positive 128-bit serial: a leading 0x01..0x7f byte keeps it from reading as negative.
  cert.serialNumber = "01" + forge.util.bytesToHex(forge.random.getBytesSync(15));
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3650 * 86_400_000);
  const subject = [{ name: "commonName", value: hostname }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: [{ type: 2, value: hostname }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}
