import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cloudConfigKind } from './cloud-config.js';
import type { KubeObject } from './types.js';
import { compileValidator } from './validation.js';

const validate = compileValidator(cloudConfigKind);

function cc(spec: Record<string, unknown>, name = 'app'): KubeObject {
  return { apiVersion: 'metalplane.dev/v1alpha1', kind: 'CloudConfig', metadata: { name, namespace: 'p' }, spec };
}

const dbIp = { name: 'DB_IP', valueFrom: { fieldRef: { kind: 'Device', name: 'db-1', fieldPath: 'status.ipAddresses[0].address' } } };
const cloudConfig = (content: string, extra: Record<string, unknown> = {}) => ({ contentType: 'text/cloud-config', content, ...extra });
const shell = (content: string) => ({ contentType: 'text/x-shellscript', content });

/** Each row: a spec, and the `field: message` lines admission answers (empty = accepted). */
const cases: Array<{ name: string; spec: Record<string, unknown>; want: Array<string | RegExp> }> = [
  {
    name: 'the issue\'s example',
    spec: {
      values: [dbIp],
      parts: [
        cloudConfig('#cloud-config\nwrite_files:\n- path: /etc/app/db.env\n  content: "DB_IP=$(DB_IP)\\n"\n'),
        shell('#!/bin/sh\necho "$(DB_IP)" > /run/db-ip\n'),
      ],
    },
    want: [],
  },
  {
    name: 'every kind of value, a patch, gzip',
    spec: {
      encoding: 'gzip+base64',
      values: [
        { name: 'LITERAL', value: 'x' },
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'token' } } },
        { name: 'MOTD', valueFrom: { configMapKeyRef: { name: 'cm', key: 'motd' } } },
        { name: 'BASE', valueFrom: { cloudConfigRef: { name: 'base' } } },
        { name: 'PRIV', valueFrom: { fieldRef: { kind: 'Device', name: 'db-1', fieldPath: 'status.ipAddresses[?(@.public==false)].address' } } },
      ],
      parts: [cloudConfig('#cloud-config\nruncmd: ["echo $(LITERAL) $$(KEEP)"]\n', { patches: [{ fromValue: 'TOKEN', toFieldPath: 'write_files[0].content' }] })],
    },
    want: [],
  },
  {
    name: 'a wrong type, with cloud-init\'s path',
    spec: { parts: [cloudConfig('#cloud-config\nwrite_files: 5\n')] },
    want: ['spec.parts[0]: write_files: 5 is not of type array'],
  },
  {
    name: 'nested errors name the item',
    spec: { parts: [cloudConfig('#cloud-config\nwrite_files:\n- content: x\n'), cloudConfig('#cloud-config\nruncmd: {a: 1}\n')] },
    want: ['spec.parts[0]: write_files.0: path is a required property', 'spec.parts[1]: runcmd: {"a":1} is not of type array'],
  },
  {
    name: 'broken YAML',
    spec: { parts: [cloudConfig('#cloud-config\na: [1, 2\nb: c: d\n')] },
    want: [/^spec\.parts\[0\]: the cloud-config is not valid YAML: /],
  },
  {
    name: 'a cloud-config that is a list',
    spec: { parts: [cloudConfig('#cloud-config\n- a\n')] },
    want: ['spec.parts[0]: the document must be a mapping of cloud-config keys, not a list'],
  },
  {
    name: 'no #cloud-config header',
    spec: { parts: [cloudConfig('runcmd: [a]\n')] },
    want: ['spec.parts[0]: a text/cloud-config part must start with the line #cloud-config'],
  },
  {
    name: 'a shell part without #!',
    spec: { parts: [shell('echo hi\n')] },
    want: ['spec.parts[0]: a text/x-shellscript part must start with #! (e.g. #!/bin/sh)'],
  },
  {
    name: 'an unknown placeholder',
    spec: { values: [dbIp], parts: [shell('#!/bin/sh\necho $(DB_PORT)\n')] },
    want: ['spec.parts[0].content: Invalid value: "$(DB_PORT)": is not a declared value (declared: DB_IP); write $$(DB_PORT) for a literal $(DB_PORT)'],
  },
  {
    name: 'a value with both value and valueFrom, and one with two sources',
    spec: {
      values: [
        { name: 'A', value: 'x', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } },
        { name: 'B', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' }, secretKeyRef: { name: 's', key: 'k' } } },
      ],
      parts: [shell('#!/bin/sh\n')],
    },
    want: [
      'spec.values[0]: Required value: exactly one of value and valueFrom',
      'spec.values[1].valueFrom: Invalid value: ["configMapKeyRef","secretKeyRef"]: must name exactly one of fieldRef, secretKeyRef, configMapKeyRef, cloudConfigRef',
    ],
  },
  {
    name: 'a duplicate value name',
    spec: { values: [{ name: 'A', value: '1' }, { name: 'A', value: '2' }], parts: [shell('#!/bin/sh\n')] },
    want: ['spec.values[1].name: Duplicate value: "A"'],
  },
  {
    name: 'reading itself',
    spec: { values: [{ name: 'ME', valueFrom: { cloudConfigRef: { name: 'app' } } }], parts: [shell('#!/bin/sh\n')] },
    want: ['spec.values[0].valueFrom.cloudConfigRef: Forbidden: a CloudConfig cannot include its own output'],
  },
  {
    name: 'a bad fieldPath',
    spec: { values: [{ name: 'X', valueFrom: { fieldRef: { kind: 'Device', name: 'd', fieldPath: 'status..x' } } }], parts: [shell('#!/bin/sh\n')] },
    want: [/^spec\.values\[0\]\.valueFrom\.fieldRef\.fieldPath: Invalid value: "status\.\.x": "status\.\.x": expected a field name/],
  },
  {
    name: 'a kind a fieldRef cannot read',
    spec: { values: [{ name: 'X', valueFrom: { fieldRef: { kind: 'Secret', name: 'd', fieldPath: 'data.x' } } }], parts: [shell('#!/bin/sh\n')] },
    want: [/^spec\.values\[0\]\.valueFrom\.fieldRef\.kind: Unsupported value: "Secret": supported values: "Device", /],
  },
  {
    name: 'patches: an unknown value, a path that cannot be written, on a shell part',
    spec: {
      values: [{ name: 'A', value: '1' }],
      parts: [
        cloudConfig('#cloud-config\nruncmd: "x"\n', { patches: [{ fromValue: 'B', toFieldPath: 'bootcmd[0]' }, { fromValue: 'A', toFieldPath: 'runcmd[0]' }] }),
        { ...shell('#!/bin/sh\n'), patches: [{ fromValue: 'A', toFieldPath: 'x' }] },
      ],
    },
    want: [
      'spec.parts[0]: runcmd: "x" is not of type array',
      'spec.parts[0].patches[0].fromValue: Invalid value: "B": is not a declared value (declared: A)',
      'spec.parts[0].patches[1].toFieldPath: Invalid value: "runcmd[0]": runcmd is a string, not a list',
      'spec.parts[1].patches: Forbidden: patches edit YAML: only a text/cloud-config part has them',
    ],
  },
  {
    name: 'a part over the size admission parses',
    spec: { parts: [cloudConfig('#cloud-config\n#' + 'x'.repeat(130 * 1024) + '\n')] },
    want: ['spec.parts[0].content: Too long: may not be more than 131072 bytes'],
  },
  { name: 'no parts', spec: { parts: [] }, want: [/^spec\.parts: Invalid value: \[\]: spec\.parts in body should have at least 1 items/] },
  {
    name: 'an unknown content type and encoding',
    spec: { encoding: 'zip', parts: [{ contentType: 'text/upstart-job', content: 'x' }] },
    want: [/^spec\.parts\[0\]\.contentType: Unsupported value: "text\/upstart-job"/, /^spec\.encoding: Unsupported value: "zip": supported values: "gzip\+base64"/],
  },
  {
    name: 'two parts of one file name (the second is part-002 by default)',
    spec: { parts: [{ ...shell('#!/bin/sh\n'), filename: 'part-002' }, shell('#!/bin/sh\n')] },
    want: ['spec.parts[1].filename: Duplicate value: "part-002"'],
  },
  { name: 'a lower-case value name', spec: { values: [{ name: 'db_ip', value: 'x' }], parts: [shell('#!/bin/sh\n')] }, want: [/^spec\.values\[0\]\.name: Invalid value: "db_ip"/] },
];

test('CloudConfig admission: a table of good and bad specs', () => {
  for (const c of cases) {
    const r = validate(cc(c.spec));
    const got = r.causes.map((x) => `${x.field}: ${x.message}`);
    assert.equal(got.length, c.want.length, `${c.name}: ${JSON.stringify(got)}`);
    c.want.forEach((w, i) => {
      if (typeof w === 'string') assert.equal(got[i], w, c.name);
      else assert.match(got[i]!, w, c.name);
    });
  }
});
