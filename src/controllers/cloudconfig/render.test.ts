import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import YAML from 'yaml';
import type { CloudConfigSpec } from '../../kinds/cloud-config.js';
import { deliveredUserData, documentOf, hashOf, multipartMixed, renderCloudConfig, statusUserData } from './render.js';
import { findCycle } from './resolve.js';

const values = new Map([
  ['DB_IP', '10.1.0.7'],
  ['NOTE', 'a: b\nc'],
]);

const cc = (content: string, patches?: CloudConfigSpec['parts'][number]['patches']) => ({ contentType: 'text/cloud-config' as const, content, ...(patches ? { patches } : {}) });
const sh = (content: string) => ({ contentType: 'text/x-shellscript' as const, content });

test('render: one part is itself, several are multipart/mixed, in order', () => {
  const cases: Array<{ name: string; spec: CloudConfigSpec; contentType: string; document?: string; includes?: string[]; parsed?: unknown }> = [
    {
      name: 'one cloud-config',
      spec: { parts: [cc('#cloud-config\nruncmd: ["echo $(DB_IP)"]\n')] },
      contentType: 'text/cloud-config',
      document: '#cloud-config\nruncmd: ["echo 10.1.0.7"]\n',
    },
    { name: 'one script', spec: { parts: [sh('#!/bin/sh\necho $(DB_IP) $(hostname)\n')] }, contentType: 'text/x-shellscript', document: '#!/bin/sh\necho 10.1.0.7 $(hostname)\n' },
    {
      name: 'one per-boot script: only MIME can say per-boot',
      spec: { parts: [{ contentType: 'text/x-shellscript-per-boot', content: '#!/bin/sh\n' }] },
      contentType: 'multipart/mixed',
      includes: ['Content-Type: text/x-shellscript-per-boot; charset="us-ascii"'],
    },
    {
      name: 'two parts',
      spec: { parts: [cc('#cloud-config\nbootcmd: ["echo $(DB_IP)"]\n'), { ...sh('#!/bin/sh\necho "$(DB_IP)"\n'), filename: 'db.sh' }] },
      contentType: 'multipart/mixed',
      includes: ['MIME-Version: 1.0', 'Content-Disposition: attachment; filename="part-001"', 'Content-Disposition: attachment; filename="db.sh"', 'echo "10.1.0.7"\n'],
    },
    {
      name: 'a patch sets a value as a YAML string, whatever it holds',
      spec: { parts: [cc('#cloud-config\n# keep me\nwrite_files:\n- path: /etc/note\n', [{ fromValue: 'NOTE', toFieldPath: 'write_files[0].content' }])] },
      contentType: 'text/cloud-config',
      includes: ['#cloud-config\n# keep me\n'],
      parsed: { write_files: [{ path: '/etc/note', content: 'a: b\nc' }] },
    },
  ];
  for (const c of cases) {
    const r = renderCloudConfig(c.spec, values);
    assert.ok(r.ok, `${c.name}: ${JSON.stringify(r)}`);
    assert.equal(r.contentType, c.contentType, c.name);
    if (c.document !== undefined) assert.equal(r.document, c.document, c.name);
    for (const s of c.includes ?? []) assert.ok(r.document.includes(s), `${c.name}: ${s} in\n${r.document}`);
    if (c.parsed !== undefined) assert.deepEqual(YAML.parse(r.document), c.parsed, c.name);
    assert.equal(r.hash, hashOf(r.document), c.name);
    assert.equal(r.delivered.toString(), r.document, c.name);
    const again = renderCloudConfig(c.spec, values);
    assert.ok(again.ok && again.document === r.document, `${c.name}: the same inputs render the same bytes`);
  }
});

test('render: what breaks a render is said, with the part', () => {
  const big = 'x'.repeat(70 * 1024);
  const cases: Array<{ name: string; spec: CloudConfigSpec; reason: string; message: RegExp }> = [
    {
      name: 'a value that breaks the YAML',
      spec: { parts: [cc('#cloud-config\nbootcmd:\n- $(NOTE)\n')] },
      reason: 'RenderFailed',
      message: /^parts\[0\]: with its values in, the cloud-config is not valid YAML: .*toFieldPath/,
    },
    {
      name: 'a value that breaks the schema',
      spec: { parts: [cc('#cloud-config\npackage_update: $(DB_IP)\n')] },
      reason: 'RenderFailed',
      message: /^parts\[0\]: with its values in, package_update: "10\.1\.0\.7" is not of type boolean$/,
    },
    { name: 'a value with no value', spec: { parts: [sh('#!/bin/sh\n$(NOPE)\n')] }, reason: 'RenderFailed', message: /^parts\[0\]: no value for \$\(NOPE\)$/ },
    { name: 'too large', spec: { parts: [sh(`#!/bin/sh\n# ${big}\n`)] }, reason: 'TooLarge', message: /^the rendered user data is \d+ bytes; a datasource carries at most 65536 \(spec\.encoding: gzip\+base64/ },
  ];
  for (const c of cases) {
    const r = renderCloudConfig(c.spec, values);
    assert.equal(r.ok, false, c.name);
    if (r.ok) continue;
    assert.equal(r.reason, c.reason, c.name);
    assert.match(r.message, c.message, c.name);
  }
  // gzip brings the same document under the limit: the limit is on what a machine receives.
  const zipped = renderCloudConfig({ encoding: 'gzip+base64', parts: [sh(`#!/bin/sh\n# ${big}\n`)] }, values);
  assert.ok(zipped.ok);
  assert.ok(zipped.delivered.length < 1024);
  assert.equal(gunzipSync(zipped.delivered).toString(), zipped.document);
});

test('render: gzip+base64 in status, and back to the document', () => {
  const spec: CloudConfigSpec = { encoding: 'gzip+base64', parts: [sh('#!/bin/sh\necho $(DB_IP)\n')] };
  const r = renderCloudConfig(spec, values);
  assert.ok(r.ok);
  const userData = statusUserData(r.delivered, spec.encoding);
  assert.equal(Buffer.from(userData, 'base64')[0], 0x1f, 'gzip magic');
  const delivered = deliveredUserData({ userData, encoding: 'gzip+base64' })!;
  assert.deepEqual(delivered, r.delivered);
  assert.equal(documentOf(delivered, 'gzip+base64'), '#!/bin/sh\necho 10.1.0.7\n');
  assert.equal(r.hash, hashOf('#!/bin/sh\necho 10.1.0.7\n'), 'the hash is of the document, not of its encoding');
  const inSecret = deliveredUserData({ secretRef: { name: 's', key: 'userdata' } }, { userdata: r.delivered.toString('base64') });
  assert.deepEqual(inSecret, r.delivered);
});

test('multipart: non-ASCII parts are base64 UTF-8; the boundary never occurs in a part', () => {
  const doc = multipartMixed([
    { contentType: 'text/x-shellscript', filename: 'a', content: '#!/bin/sh\necho héllo\n' },
    { contentType: 'text/x-shellscript', filename: 'b', content: '#!/bin/sh\n' },
  ]);
  assert.match(doc, /Content-Type: text\/x-shellscript; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64/);
  assert.ok(doc.includes(Buffer.from('#!/bin/sh\necho héllo\n').toString('base64')));
  const boundary = /boundary="([^"]+)"/.exec(doc)![1]!;
  assert.equal(doc.split(`--${boundary}`).length - 1, 3, 'two parts and the close');
});

test('cycles: each member finds the cycle through itself; a cycle downstream is not its own', () => {
  const graph: Record<string, string[]> = { a: ['b'], b: ['c'], c: ['a'], d: ['a'], e: ['e2'], e2: [], s: ['s'] };
  const edges = (n: string) => graph[n] ?? [];
  assert.deepEqual(findCycle('a', edges), ['a', 'b', 'c', 'a']);
  assert.deepEqual(findCycle('b', edges), ['b', 'c', 'a', 'b']);
  assert.deepEqual(findCycle('s', edges), ['s', 's']);
  assert.equal(findCycle('d', edges), undefined);
  assert.equal(findCycle('e', edges), undefined);
});
