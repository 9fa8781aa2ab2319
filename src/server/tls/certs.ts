// Certificates for the shared port: a CA and a serving certificate generated into the data dir on first start
// (ECDSA P-256), or the operator's own files (`--tls-cert-file`, `--tls-key-file`, `--tls-ca-file`).
//
// The generated CA lives 10 years and is kept across restarts, because kubeconfigs, agents and operators' trust
// stores carry it. The serving certificate lives 1 year and is re-issued on start when it expires within 30 days,
// when the wanted SANs changed, or when it no longer belongs to the CA; nobody trusts it directly, so replacing it
// is always safe.

import 'reflect-metadata'; // @peculiar/x509 needs it loaded before the library itself
import * as x509 from '@peculiar/x509';
import { createPrivateKey, KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';

x509.cryptoProvider.set(webcrypto);

/** A certificate or key that cannot be used: start-up fails with this message, which names the file. */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message);
  }
}

export interface EnsureCertificatesOptions {
  dataDir: string;
  /**
   * Names the serving certificate must carry besides the ones always included (`localhost`, `127.0.0.1`, `::1`,
   * os.hostname()): the listen address (wildcards are skipped) and every `--tls-san`. DNS names or IP addresses.
   */
  sans: string[];
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  /** the clock; tests pass a date to exercise renewal */
  now?: Date;
}

export interface CertificateBundle {
  /** PEM serving certificate (with its chain when the operator's file has one) */
  cert: string;
  /** PEM private key of the serving certificate */
  key: string;
  /** PEM certificates clients should trust: the kubeconfig's certificate-authority-data */
  ca: string;
  caPath: string;
  certPath: string;
  keyPath: string;
  /** files were created because there were none */
  generated: boolean;
  /** an existing generated certificate was replaced (near expiry, SANs changed, unusable) */
  renewed: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;
export const CA_LIFETIME_DAYS = 3650;
export const SERVING_LIFETIME_DAYS = 365;
export const RENEW_BEFORE_DAYS = 30;
// Backdate so a client whose clock is a little behind ours still accepts a fresh certificate.
const BACKDATE_MS = 5 * 60 * 1000;

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const SERVING_CERT_FILE = 'tls.crt';
export const SERVING_KEY_FILE = 'tls.key';

export async function ensureCertificates(opts: EnsureCertificatesOptions): Promise<CertificateBundle> {
  const now = opts.now ?? new Date();
  if (opts.certFile !== undefined || opts.keyFile !== undefined || opts.caFile !== undefined) {
    return loadOperatorCertificates(opts, now);
  }
  return ensureGeneratedCertificates(opts.dataDir, wantedSans(opts.sans), now);
}

/**
 * The SANs a generated serving certificate carries: the fixed loopback names, the host name, and `extra`
 * (listen address, `--tls-san`), normalized and without duplicates. Wildcard listen addresses are dropped.
 */
export function wantedSans(extra: string[], hostname: string = os.hostname()): string[] {
  const out = new Set<string>(['localhost', '127.0.0.1', '::1']);
  // A host name that is not a valid DNS name (rare, but `_` happens) cannot go into a certificate; skip it
  // rather than refuse to start.
  const host = normalizeSan(hostname);
  if (host !== undefined) out.add(host);
  for (const raw of extra) {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed === '0.0.0.0' || trimmed === '::' || trimmed === '[::]') continue;
    const san = normalizeSan(trimmed);
    if (san === undefined) {
      throw new TlsConfigError(`--tls-san ${JSON.stringify(raw)} is neither a DNS name nor an IP address`);
    }
    out.add(san);
  }
  return [...out];
}

const DNS_LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const DNS_NAME = new RegExp(`^(\\*\\.)?${DNS_LABEL}(\\.${DNS_LABEL})*$`);

/** Canonical form of a SAN (lower-case DNS name, compressed IPv6), or undefined if it is neither kind. */
function normalizeSan(value: string): string | undefined {
  let v = value.trim();
  if (v.startsWith('[') && v.endsWith(']')) v = v.slice(1, -1);
  const family = isIP(v);
  if (family === 4) return v;
  if (family === 6) return new URL(`http://[${v}]/`).hostname.slice(1, -1);
  v = v.toLowerCase().replace(/\.$/, '');
  return v.length <= 253 && DNS_NAME.test(v) ? v : undefined;
}

function sanKey(san: string): string {
  return isIP(san) ? `ip:${san}` : `dns:${san}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Operator-provided files

async function loadOperatorCertificates(opts: EnsureCertificatesOptions, now: Date): Promise<CertificateBundle> {
  const { certFile, keyFile, caFile } = opts;
  if (certFile === undefined || keyFile === undefined) {
    const missing = certFile === undefined ? '--tls-cert-file' : '--tls-key-file';
    const given = certFile === undefined ? (keyFile !== undefined ? '--tls-key-file' : '--tls-ca-file') : '--tls-cert-file';
    throw new TlsConfigError(`${given} was given without ${missing}: pass both --tls-cert-file and --tls-key-file`);
  }
  const certPem = await readPem(certFile, 'certificate');
  const keyPem = await readPem(keyFile, 'private key');
  const chain = parseCertificates(certPem, certFile);
  const key = parsePrivateKey(keyPem, keyFile);
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key)) {
    throw new TlsConfigError(
      `${keyFile}: private key does not match the certificate in ${certFile} (subject ${oneLine(leaf.subject)})`,
      keyFile,
    );
  }
  checkValidity(leaf, certFile, now);

  let ca = certPem;
  let caPath = certFile;
  if (caFile !== undefined) {
    ca = await readPem(caFile, 'CA certificate');
    const anchors = parseCertificates(ca, caFile);
    if (!isAnchored(chain, anchors)) {
      const top = chain[chain.length - 1]!;
      throw new TlsConfigError(
        `${caFile}: none of its certificates issued ${certFile} (the chain ends at issuer ${oneLine(top.issuer)})`,
        caFile,
      );
    }
    caPath = caFile;
  }
  return { cert: certPem, key: keyPem, ca, caPath, certPath: certFile, keyPath: keyFile, generated: false, renewed: false };
}

/** Whether the chain (leaf first) is signed link by link and ends in, or under, one of the anchors. */
function isAnchored(chain: X509Certificate[], anchors: X509Certificate[]): boolean {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (anchors.some((a) => a.fingerprint256 === cert.fingerprint256)) return true;
    if (anchors.some((a) => issuedBy(cert, a))) return true;
    const next = chain[i + 1];
    if (next === undefined || !issuedBy(cert, next)) return false;
  }
  return false;
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function checkValidity(cert: X509Certificate, file: string, now: Date): void {
  if (new Date(cert.validTo).getTime() <= now.getTime()) {
    throw new TlsConfigError(`${file}: certificate expired on ${cert.validTo}`, file);
  }
  if (new Date(cert.validFrom).getTime() > now.getTime()) {
    throw new TlsConfigError(`${file}: certificate is not valid before ${cert.validFrom}`, file);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Generated CA and serving certificate

interface LoadedCa {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
  key: KeyObject;
}

async function ensureGeneratedCertificates(dataDir: string, sans: string[], now: Date): Promise<CertificateBundle> {
  const caPath = path.join(dataDir, CA_CERT_FILE);
  const caKeyPath = path.join(dataDir, CA_KEY_FILE);
  const certPath = path.join(dataDir, SERVING_CERT_FILE);
  const keyPath = path.join(dataDir, SERVING_KEY_FILE);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  let generated = false;
  let renewed = false;

  let ca = await loadCa(caPath, caKeyPath);
  if (ca === undefined || expiresSoon(ca.cert, now)) {
    if (ca === undefined) generated = true;
    else renewed = true;
    const created = await createCa(now);
    await writeAtomic(caKeyPath, created.keyPem, 0o600);
    await writeAtomic(caPath, created.certPem, 0o644);
    ca = { ...created, cert: new X509Certificate(created.certPem), key: createPrivateKey(created.keyPem) };
  } else {
    await tightenMode(caKeyPath);
  }

  const current = await loadServing(certPath, keyPath);
  if (typeof current === 'object' && servingIsCurrent(current, ca, sans, now)) {
    await tightenMode(keyPath);
    return { cert: current.certPem, key: current.keyPem, ca: ca.certPem, caPath, certPath, keyPath, generated, renewed };
  }
  if (current === 'missing') generated = true;
  else renewed = true;
  const serving = await createServing(ca, sans, now);
  await writeAtomic(keyPath, serving.keyPem, 0o600);
  await writeAtomic(certPath, serving.certPem, 0o644);
  return { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem, caPath, certPath, keyPath, generated, renewed };
}

async function loadCa(certPath: string, keyPath: string): Promise<LoadedCa | undefined> {
  const certPem = await readIfExists(certPath, 'CA certificate');
  const keyPem = await readIfExists(keyPath, 'CA private key');
  if (certPem === undefined && keyPem === undefined) return undefined;
  // A half-present or broken CA is not silently replaced: everything that trusts it would stop working.
  const advice = `remove ${CA_CERT_FILE} and ${CA_KEY_FILE} to generate a new CA (clients must then trust the new ${CA_CERT_FILE})`;
  if (certPem === undefined) throw new TlsConfigError(`${certPath} is missing but ${keyPath} exists; ${advice}`, certPath);
  if (keyPem === undefined) throw new TlsConfigError(`${keyPath} is missing but ${certPath} exists; ${advice}`, keyPath);
  const cert = withAdvice(() => parseCertificates(certPem, certPath)[0]!, advice);
  const key = withAdvice(() => parsePrivateKey(keyPem, keyPath), advice);
  if (!cert.checkPrivateKey(key)) {
    throw new TlsConfigError(`${keyPath}: private key does not match the certificate in ${certPath}; ${advice}`, keyPath);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TlsConfigError(`${keyPath}: the CA key must be ECDSA P-256; ${advice}`, keyPath);
  }
  return { certPem, keyPem, cert, key };
}

interface LoadedServing {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
  key: KeyObject;
}

/** The generated serving certificate; when it is missing or unusable, it is issued again. */
async function loadServing(certPath: string, keyPath: string): Promise<LoadedServing | 'missing' | 'unusable'> {
  const certPem = await readIfExists(certPath, 'certificate');
  const keyPem = await readIfExists(keyPath, 'private key');
  if (certPem === undefined && keyPem === undefined) return 'missing';
  if (certPem === undefined || keyPem === undefined) return 'unusable';
  try {
    return { certPem, keyPem, cert: parseCertificates(certPem, certPath)[0]!, key: parsePrivateKey(keyPem, keyPath) };
  } catch (err) {
    if (err instanceof TlsConfigError) return 'unusable';
    throw err;
  }
}

function servingIsCurrent(serving: LoadedServing, ca: LoadedCa, sans: string[], now: Date): boolean {
  if (!serving.cert.checkPrivateKey(serving.key)) return false;
  if (!issuedBy(serving.cert, ca.cert)) return false;
  if (expiresSoon(serving.cert, now)) return false;
  if (new Date(serving.cert.validFrom).getTime() > now.getTime()) return false;
  const have = certificateSans(serving.certPem);
  const want = new Set(sans.map(sanKey));
  return have.size === want.size && [...want].every((k) => have.has(k));
}

function expiresSoon(cert: X509Certificate, now: Date): boolean {
  return new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS;
}

function certificateSans(pem: string): Set<string> {
  const cert = new x509.X509Certificate(pem);
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const out = new Set<string>();
  for (const name of ext?.names.toJSON() ?? []) {
    if (name.type !== 'dns' && name.type !== 'ip') continue;
    const san = normalizeSan(name.value);
    if (san !== undefined) out.add(sanKey(san));
  }
  return out;
}

async function createCa(now: Date): Promise<{ certPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    // The timestamp tells CAs of different installs (or a regenerated one) apart in a trust store.
    name: `CN=metalplane-ca@${Math.floor(now.getTime() / 1000)}, O=metalplane`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + CA_LIFETIME_DAYS * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys: keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) };
}

async function createServing(ca: LoadedCa, sans: string[], now: Date): Promise<{ certPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  const caCert = new x509.X509Certificate(ca.certPem);
  const caSigningKey = await webcrypto.subtle.importKey(
    'pkcs8',
    ca.key.export({ format: 'der', type: 'pkcs8' }),
    EC_ALGORITHM,
    false,
    ['sign'],
  );
  // Reuse the CA's own key identifier so AKI and SKI match byte for byte, whatever method computed it.
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const aki = caKeyId
    ? new x509.AuthorityKeyIdentifierExtension(caKeyId)
    : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: 'CN=metalplane, O=metalplane',
    // The parsed Name keeps the CA subject's exact encoding; Go matches issuer to subject byte for byte.
    issuer: caCert.subjectName,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + SERVING_LIFETIME_DAYS * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caSigningKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        sans.map((san) => ({ type: isIP(san) ? ('ip' as const) : ('dns' as const), value: san })),
      ),
      aki,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) };
}

/** A positive 128-bit serial (RFC 5280 wants positive and at most 20 octets). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

// ---------------------------------------------------------------------------------------------------------------
// Files

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw readError(err, file, what);
  }
}

async function readIfExists(file: string, what: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw readError(err, file, what);
  }
}

function readError(err: unknown, file: string, what: string): TlsConfigError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : (err as Error).message;
  return new TlsConfigError(`${file}: cannot read ${what}: ${reason}`, file);
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file, in order (leaf first for a serving chain). */
function parseCertificates(pem: string, file: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE);
  if (blocks === null) {
    throw new TlsConfigError(`${file}: no PEM certificate found (expected a "-----BEGIN CERTIFICATE-----" block)`, file);
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      const which = blocks.length > 1 ? `certificate #${i + 1}` : 'certificate';
      throw new TlsConfigError(`${file}: ${which} is not a valid X.509 certificate (${(err as Error).message})`, file);
    }
  });
}

function parsePrivateKey(pem: string, file: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new TlsConfigError(`${file}: no PEM private key found (expected a "-----BEGIN PRIVATE KEY-----" block)`, file);
  }
  if (/ENCRYPTED/.test(pem)) {
    throw new TlsConfigError(`${file}: the private key is encrypted; metalplane needs an unencrypted key`, file);
  }
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TlsConfigError(`${file}: not a valid private key (${(err as Error).message})`, file);
  }
}

function withAdvice<T>(fn: () => T, advice: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TlsConfigError) throw new TlsConfigError(`${err.message}; ${advice}`, err.file);
    throw err;
  }
}

/** Replace a file in one step, so a crash never leaves half a key behind. */
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, content, { mode, flag: 'wx' });
  await chmod(tmp, mode); // the umask may have taken bits away; set exactly what we mean
  await rename(tmp, file);
}

/** Private keys are 0600 even if someone loosened them. */
async function tightenMode(file: string): Promise<void> {
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) await chmod(file, 0o600);
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
