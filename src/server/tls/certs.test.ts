import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ensureCertificates, TlsConfigError, wantedSans, type CertificateBundle } from './certs.js';

const DAY = 24 * 60 * 60 * 1000;
let root: string;
let n = 0;
const freshDir = (): string => path.join(root, `d${n++}`);

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'metalplane-certs-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function filesOf(b: CertificateBundle): Promise<string[]> {
  const dir = path.dirname(b.certPath);
  return Promise.all(['ca.crt', 'ca.key', 'tls.crt', 'tls.key'].map((f) => readFile(path.join(dir, f), 'utf8')));
}

test('first start generates a CA and a serving certificate with the wanted SANs and extensions', async () => {
  const dataDir = freshDir();
  const now = new Date();
  const b = await ensureCertificates({ dataDir, sans: ['0.0.0.0', '10.9.8.7', 'Metal.Example.com.', '2001:db8::1'], now });
  assert.equal(b.generated, true);
  assert.equal(b.renewed, false);
  assert.equal(b.caPath, path.join(dataDir, 'ca.crt'));
  assert.equal(b.certPath, path.join(dataDir, 'tls.crt'));
  assert.equal(b.keyPath, path.join(dataDir, 'tls.key'));

  for (const [file, mode] of [['ca.key', 0o600], ['tls.key', 0o600], ['ca.crt', 0o644], ['tls.crt', 0o644]] as const) {
    assert.equal((await stat(path.join(dataDir, file))).mode & 0o777, mode, file);
  }

  const leaf = new X509Certificate(b.cert);
  const ca = new X509Certificate(b.ca);
  const sans = leaf.subjectAltName!.split(', ');
  for (const want of [
    'DNS:localhost',
    'IP Address:127.0.0.1',
    'IP Address:0:0:0:0:0:0:0:1',
    `DNS:${os.hostname().toLowerCase()}`,
    'IP Address:10.9.8.7',
    'DNS:metal.example.com',
    'IP Address:2001:DB8:0:0:0:0:0:1',
  ]) {
    assert.ok(sans.includes(want), `${want} in ${leaf.subjectAltName}`);
  }
  assert.ok(!sans.some((s) => s.includes('0.0.0.0')), 'a wildcard listen address is no SAN');
  assert.ok(leaf.checkIssued(ca));
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(b.key)));
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']); // Node reports the extended key usage here
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');

  const lifetime = (c: X509Certificate): number => (new Date(c.validTo).getTime() - now.getTime()) / DAY;
  assert.ok(Math.abs(lifetime(leaf) - 365) < 1, `serving lifetime ${lifetime(leaf)} days`);
  assert.ok(Math.abs(lifetime(ca) - 3650) < 1, `CA lifetime ${lifetime(ca)} days`);

  const pLeaf = new x509.X509Certificate(b.cert);
  const pCa = new x509.X509Certificate(b.ca);
  const ku = (c: x509.X509Certificate): number | undefined => c.getExtension(x509.KeyUsagesExtension)?.usages;
  assert.equal(ku(pLeaf), x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  assert.equal(ku(pCa), x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  assert.equal(pLeaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
  assert.equal(pCa.getExtension(x509.BasicConstraintsExtension)?.ca, true);
  const caSki = pCa.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  assert.ok(caSki);
  assert.equal(pLeaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, caSki);
  assert.ok(pLeaf.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  // Go (kubectl) matches issuer to subject byte for byte.
  assert.deepEqual(Buffer.from(pLeaf.issuerName.toArrayBuffer()), Buffer.from(pCa.subjectName.toArrayBuffer()));
});

test('a second start reuses every file byte for byte, whatever the SAN spelling or order', async () => {
  const dataDir = freshDir();
  const first = await ensureCertificates({ dataDir, sans: ['10.1.1.1', 'a.example'] });
  const before = await filesOf(first);
  const second = await ensureCertificates({ dataDir, sans: ['A.example', '10.1.1.1', '::'] });
  assert.equal(second.generated, false);
  assert.equal(second.renewed, false);
  assert.equal(second.cert, first.cert);
  assert.equal(second.key, first.key);
  assert.deepEqual(await filesOf(second), before);
});

test('the serving certificate is renewed near expiry and when the SANs change; the CA is kept', async () => {
  const dataDir = freshDir();
  const start = new Date();
  const first = await ensureCertificates({ dataDir, sans: [], now: start });

  const stillFine = await ensureCertificates({ dataDir, sans: [], now: new Date(start.getTime() + 300 * DAY) });
  assert.equal(stillFine.renewed, false);
  assert.equal(stillFine.cert, first.cert);

  const later = new Date(start.getTime() + 340 * DAY); // 25 days before expiry
  const renewed = await ensureCertificates({ dataDir, sans: [], now: later });
  assert.equal(renewed.renewed, true);
  assert.equal(renewed.generated, false);
  assert.notEqual(renewed.cert, first.cert);
  assert.equal(renewed.ca, first.ca);
  const leaf = new X509Certificate(renewed.cert);
  assert.ok(new Date(leaf.validTo).getTime() > later.getTime() + 364 * DAY);
  assert.ok(leaf.verify(new X509Certificate(first.ca).publicKey));
  assert.equal((await stat(renewed.keyPath)).mode & 0o777, 0o600);

  const withSan = await ensureCertificates({ dataDir, sans: ['192.0.2.10'], now: later });
  assert.equal(withSan.renewed, true);
  assert.equal(withSan.ca, first.ca);
  assert.match(new X509Certificate(withSan.cert).subjectAltName!, /IP Address:192\.0\.2\.10/);

  // Dropping a SAN renews too.
  const without = await ensureCertificates({ dataDir, sans: [], now: later });
  assert.equal(without.renewed, true);
  assert.doesNotMatch(new X509Certificate(without.cert).subjectAltName!, /192\.0\.2\.10/);
});

test('a loosened key file mode is set back to 0600', async () => {
  const dataDir = freshDir();
  const b = await ensureCertificates({ dataDir, sans: [] });
  await chmod(b.keyPath, 0o644);
  await chmod(path.join(dataDir, 'ca.key'), 0o640);
  await ensureCertificates({ dataDir, sans: [] });
  assert.equal((await stat(b.keyPath)).mode & 0o777, 0o600);
  assert.equal((await stat(path.join(dataDir, 'ca.key'))).mode & 0o777, 0o600);
});

test("operator files are used as given; the kubeconfig CA is the cert itself unless --tls-ca-file", async () => {
  const issued = await ensureCertificates({ dataDir: freshDir(), sans: [] });
  const dataDir = freshDir();
  const own = await ensureCertificates({ dataDir, sans: [], certFile: issued.certPath, keyFile: issued.keyPath });
  assert.equal(own.generated, false);
  assert.equal(own.cert, issued.cert);
  assert.equal(own.key, issued.key);
  assert.equal(own.ca, issued.cert);
  assert.equal(own.caPath, issued.certPath);
  await assert.rejects(stat(path.join(dataDir, 'ca.crt')), { code: 'ENOENT' }, 'no CA generated');

  const withCa = await ensureCertificates({
    dataDir,
    sans: [],
    certFile: issued.certPath,
    keyFile: issued.keyPath,
    caFile: issued.caPath,
  });
  assert.equal(withCa.ca, issued.ca);
  assert.equal(withCa.caPath, issued.caPath);
});

test('bad certificate or key files fail start-up with a message naming the file and the problem', async () => {
  const good = await ensureCertificates({ dataDir: freshDir(), sans: [] });
  const other = await ensureCertificates({ dataDir: freshDir(), sans: [] });
  const expired = await ensureCertificates({ dataDir: freshDir(), sans: [], now: new Date(Date.now() - 400 * DAY) });
  const dir = freshDir();
  await mkdir(dir, { recursive: true });
  const file = async (name: string, content: string): Promise<string> => {
    const p = path.join(dir, name);
    await writeFile(p, content);
    return p;
  };
  const garbage = await file('garbage.crt', 'hello\n');
  const corrupt = await file('corrupt.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const notAKey = await file('not-a.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  const missing = path.join(dir, 'missing.crt');

  const cases: Array<{ name: string; opts: Partial<Parameters<typeof ensureCertificates>[0]>; file?: string; message: RegExp }> = [
    { name: 'missing cert file', opts: { certFile: missing, keyFile: good.keyPath }, file: missing, message: /missing\.crt: cannot read certificate: no such file/ },
    { name: 'cert path is a directory', opts: { certFile: dir, keyFile: good.keyPath }, file: dir, message: /is a directory/ },
    { name: 'not PEM', opts: { certFile: garbage, keyFile: good.keyPath }, file: garbage, message: /garbage\.crt: no PEM certificate found/ },
    { name: 'corrupt PEM', opts: { certFile: corrupt, keyFile: good.keyPath }, file: corrupt, message: /corrupt\.crt: certificate is not a valid X\.509 certificate/ },
    { name: 'bad key', opts: { certFile: good.certPath, keyFile: notAKey }, file: notAKey, message: /not-a\.key: not a valid private key/ },
    { name: 'mismatched key', opts: { certFile: good.certPath, keyFile: other.keyPath }, file: other.keyPath, message: /private key does not match the certificate/ },
    { name: 'cert without key', opts: { certFile: good.certPath }, message: /--tls-cert-file was given without --tls-key-file/ },
    { name: 'CA that did not issue it', opts: { certFile: good.certPath, keyFile: good.keyPath, caFile: other.caPath }, file: other.caPath, message: /none of its certificates issued/ },
    { name: 'expired', opts: { certFile: expired.certPath, keyFile: expired.keyPath }, file: expired.certPath, message: /certificate expired on/ },
    { name: 'bad --tls-san', opts: { sans: ['not a name!'] }, message: /--tls-san "not a name!" is neither a DNS name nor an IP address/ },
  ];
  for (const c of cases) {
    await assert.rejects(
      ensureCertificates({ dataDir: freshDir(), sans: [], ...c.opts }),
      (err: unknown) => {
        assert.ok(err instanceof TlsConfigError, `${c.name}: ${String(err)}`);
        assert.match(err.message, c.message, c.name);
        if (c.file) assert.equal(err.file, c.file, c.name);
        return true;
      },
    );
  }
});

test('a broken CA in the data dir is not silently replaced; a broken serving cert is', async () => {
  const dataDir = freshDir();
  const b = await ensureCertificates({ dataDir, sans: [] });

  await writeFile(b.certPath, 'truncated');
  const healed = await ensureCertificates({ dataDir, sans: [] });
  assert.equal(healed.renewed, true);
  assert.ok(new X509Certificate(healed.cert).verify(new X509Certificate(b.ca).publicKey));

  await writeFile(path.join(dataDir, 'ca.crt'), 'truncated');
  await assert.rejects(ensureCertificates({ dataDir, sans: [] }), (err: unknown) => {
    assert.ok(err instanceof TlsConfigError);
    assert.match(err.message, /ca\.crt: no PEM certificate found.*remove ca\.crt and ca\.key/);
    return true;
  });
});

test('wantedSans: fixed names first, normalized, deduplicated, wildcards dropped', () => {
  assert.deepEqual(wantedSans(['0.0.0.0', '::', '', 'LOCALHOST', '[::1]', 'x.example', '10.0.0.1'], 'node-1'), [
    'localhost',
    '127.0.0.1',
    '::1',
    'node-1',
    'x.example',
    '10.0.0.1',
  ]);
  assert.deepEqual(wantedSans([], 'bad_host_name'), ['localhost', '127.0.0.1', '::1']);
});
