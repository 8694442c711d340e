// A private CA for tests that need certificates a client verifies (MTA-STS
// policy hosts, MX hosts under an enforcing policy).
import { generateKeyPairSync } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";

export interface TestCa {
  cert: string;
  /** A server certificate for these names or IP addresses (the first is also the CN). */
  issue(...hostnames: string[]): { cert: string; key: string };
}

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { key: privateKey, forgePublic: forge.pki.publicKeyFromPem(publicKey), forgePrivate: forge.pki.privateKeyFromPem(privateKey) };
}

function certificate(subject: string, publicKey: forge.pki.PublicKey, extensions: object[]) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = "01" + forge.util.bytesToHex(forge.random.getBytesSync(15));
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: "commonName", value: subject }]);
  cert.setExtensions(extensions);
  return cert;
}

export function createTestCa(): TestCa {
  const ca = keyPair();
  const caCert = certificate("mailferry test CA", ca.forgePublic, [{ name: "basicConstraints", cA: true }, { name: "keyUsage", keyCertSign: true, cRLSign: true }]);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.sign(ca.forgePrivate, forge.md.sha256.create());
  return {
    cert: forge.pki.certificateToPem(caCert),
    issue(...hostnames) {
      const leaf = keyPair();
      const cert = certificate(hostnames[0]!, leaf.forgePublic, [
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
        { name: "extKeyUsage", serverAuth: true },
        { name: "subjectAltName", altNames: hostnames.map((value) => (isIP(value) ? { type: 7, ip: value } : { type: 2, value })) },
      ]);
      cert.setIssuer(caCert.subject.attributes);
      cert.sign(ca.forgePrivate, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(cert), key: leaf.key };
    },
  };
}

/** A self-signed certificate for `hostname` valid from `notBefore` to `notAfter` (an expired one, for checks that must notice). */
export function certificateValidBetween(hostname: string, notBefore: Date, notAfter: Date): { cert: string; key: string } {
  const pair = keyPair();
  const cert = certificate(hostname, pair.forgePublic, [{ name: "subjectAltName", altNames: [{ type: 2, value: hostname }] }]);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setIssuer(cert.subject.attributes);
  cert.sign(pair.forgePrivate, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: pair.key };
}
