// Debian's cloud-init as the judge of what CloudConfig renders and admits:
// - `cloud-init schema --config-file` accepts every rendered cloud-config part;
// - cloud-init's own user-data processor (cloudinit.user_data.UserDataProcessor, what every datasource feeds)
//   splits a rendered document — plain, multipart/mixed, gzipped — into the parts we meant;
// - on a table of cloud-configs, our admission and `cloud-init schema` agree on valid and invalid.
// Under CI a missing cloud-init fails the file; locally it is skipped with what to install.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cloudConfigKind, type CloudConfigSpec } from '../src/kinds/cloud-config.js';
import { compileValidator } from '../src/kinds/validation.js';
import { renderCloudConfig } from '../src/controllers/cloudconfig/render.js';
import { parseYamlBounded } from '../src/kinds/cloud-init/yaml.js';
import { toolSkipReason } from './helpers/server.js';

const Python = '/usr/bin/python3';
const hint = "install Debian's cloud-init: apt-get install -y cloud-init";
const skip =
  toolSkipReason(['cloud-init', '--version'], hint) ?? toolSkipReason([Python, '-c', 'import cloudinit.user_data, cloudinit.helpers'], hint);

/** Splits user data as cloud-init does and prints each part's type, file name and (decoded) content. */
const SplitScript = `
import sys, json, logging
logging.disable(logging.CRITICAL)
from cloudinit import helpers, user_data
msg = user_data.UserDataProcessor(helpers.Paths({})).process(sys.stdin.buffer.read())
out = []
for part in msg.walk():
    if part.get_content_maintype() == 'multipart':
        continue
    out.append({"contentType": part.get_content_type(), "filename": part.get_filename(), "content": part.get_payload(decode=True).decode("utf-8")})
print(json.dumps(out))
`;

interface SplitPart {
  contentType: string;
  filename: string | null;
  content: string;
}

function cloudInitSplit(userData: Buffer): SplitPart[] {
  const r = spawnSync(Python, ['-c', SplitScript], { input: userData, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `cloud-init's user-data processor failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as SplitPart[];
}

describe("Debian's cloud-init judges rendered CloudConfigs", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'metalplane-cloud-init-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const cloudInitSchema = (config: string): { ok: boolean; output: string } => {
    const file = join(dir, `config-${++n}.yaml`);
    writeFileSync(file, config);
    const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8', timeout: 60_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
  };

  const values = new Map([
    ['DB_IP', '10.1.0.7'],
    ['TOKEN', 's3cret: "with quotes"\nand a second line'],
    ['HOST', 'app-1'],
  ]);

  const cases: Array<{ name: string; spec: CloudConfigSpec; parts: Array<{ contentType: string; filename?: string; includes: string[] }> }> = [
    {
      name: "the issue's example: a cloud-config and a script",
      spec: {
        parts: [
          { contentType: 'text/cloud-config', content: '#cloud-config\nwrite_files:\n- path: /etc/app/db.env\n  content: "DB_IP=$(DB_IP)\\n"\n' },
          { contentType: 'text/x-shellscript', content: '#!/bin/sh\necho "$(DB_IP)" > /run/db-ip\n' },
        ],
      },
      parts: [
        { contentType: 'text/cloud-config', filename: 'part-001', includes: ['DB_IP=10.1.0.7'] },
        { contentType: 'text/x-shellscript', filename: 'part-002', includes: ['echo "10.1.0.7" > /run/db-ip'] },
      ],
    },
    {
      name: 'one cloud-config, as itself',
      spec: { parts: [{ contentType: 'text/cloud-config', content: '#cloud-config\nhostname: $(HOST)\nruncmd:\n- [sh, -c, "echo $(DB_IP)"]\n' }] },
      parts: [{ contentType: 'text/cloud-config', includes: ['hostname: app-1', 'echo 10.1.0.7'] }],
    },
    {
      name: 'patched values with quotes and newlines, several script kinds, a non-ASCII part, gzip',
      spec: {
        encoding: 'gzip+base64',
        parts: [
          {
            contentType: 'text/cloud-config',
            content: '#cloud-config\npackage_update: yes\nwrite_files:\n- path: /etc/token\n  permissions: "0600"\n',
            patches: [{ fromValue: 'TOKEN', toFieldPath: 'write_files[0].content' }, { fromValue: 'DB_IP', toFieldPath: 'bootcmd[0]' }],
          },
          { contentType: 'text/x-shellscript-per-boot', content: '#!/bin/sh\necho per boot $(DB_IP)\n', filename: 'every-boot.sh' },
          { contentType: 'text/cloud-boothook', content: '#cloud-boothook\n#!/bin/sh\necho héllo wörld\n' },
        ],
      },
      parts: [
        { contentType: 'text/cloud-config', includes: ['s3cret', 'with quotes', '10.1.0.7'] },
        { contentType: 'text/x-shellscript-per-boot', filename: 'every-boot.sh', includes: ['echo per boot 10.1.0.7'] },
        { contentType: 'text/cloud-boothook', includes: ['echo héllo wörld'] },
      ],
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const r = renderCloudConfig(c.spec, values);
      assert.ok(r.ok, JSON.stringify(r));
      // Every rendered cloud-config part passes cloud-init's own schema check.
      for (const p of r.parts.filter((p) => p.contentType === 'text/cloud-config')) {
        const verdict = cloudInitSchema(p.content);
        assert.ok(verdict.ok, `cloud-init schema refused\n${p.content}\n${verdict.output}`);
      }
      // cloud-init splits what a machine receives into the parts we meant, in order.
      const split = cloudInitSplit(r.delivered);
      assert.equal(split.length, c.parts.length, JSON.stringify(split));
      c.parts.forEach((want, i) => {
        const got = split[i]!;
        assert.equal(got.contentType, want.contentType, `part ${i}`);
        if (want.filename) assert.equal(got.filename, want.filename, `part ${i}`);
        assert.equal(got.content, r.parts[i]!.content, `part ${i}: cloud-init reads the bytes we rendered`);
        for (const s of want.includes) assert.ok(got.content.includes(s), `part ${i}: ${s}`);
      });
    });
  }

  test('our YAML reads scalars as cloud-init\'s PyYAML does', () => {
    const doc = [
      'a: y', 'b: n', 'c: yes', 'd: Off', 'e: 0644', 'f: 1e3', 'g: 1.5e+3', 'h: 2.5', 'i: ~', 'j: 0x1f', 'k: "0644"', 'l: 1_000',
      'm: [on, NO, True]', 'n: !!str 12', 'p: 12:30', 'q: -.inf',
    ].join('\n');
    const r = spawnSync(Python, ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], { input: doc, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const ours = parseYamlBounded(doc);
    assert.ok(ours.ok);
    // JSON on both sides: -inf becomes null in JS and -Infinity in Python's json; compare what both can say.
    const theirs = JSON.parse(r.stdout.replace(/-Infinity/g, 'null')) as unknown;
    assert.deepEqual(JSON.parse(JSON.stringify(ours.value)), theirs);
  });

  test('on a table of cloud-configs, admission and `cloud-init schema` agree', () => {
    const validate = compileValidator(cloudConfigKind);
    const configs: Array<[string, string]> = [
      ['write_files', '#cloud-config\nwrite_files:\n- path: /x\n  content: y\n'],
      ['write_files not a list', '#cloud-config\nwrite_files: 5\n'],
      ['write_files item without path', '#cloud-config\nwrite_files:\n- content: y\n'],
      ['runcmd strings and lists', '#cloud-config\nruncmd:\n- echo a\n- [sh, -c, "echo b"]\n'],
      ['runcmd a mapping', '#cloud-config\nruncmd: {a: 1}\n'],
      ['users', '#cloud-config\nusers:\n- default\n- name: app\n  sudo: "ALL=(ALL) NOPASSWD:ALL"\n  ssh_authorized_keys: [ssh-ed25519 AAAA]\n'],
      ['users with a numeric sudo', '#cloud-config\nusers:\n- name: app\n  sudo: 5\n'],
      ['package_update yes (YAML 1.1 boolean)', '#cloud-config\npackage_update: yes\n'],
      ['package_update a string', '#cloud-config\npackage_update: "often"\n'],
      ['packages', '#cloud-config\npackages: [nginx, [postgresql, "15"]]\n'],
      ['packages a string', '#cloud-config\npackages: nginx\n'],
      ['ntp servers', '#cloud-config\nntp:\n  enabled: true\n  servers: [ntp.example.com]\n'],
      ['phone_home', '#cloud-config\nphone_home:\n  url: http://127.0.0.1/phone-home\n  post: all\n'],
      ['phone_home without url', '#cloud-config\nphone_home:\n  post: all\n'],
      ['unknown top-level key', '#cloud-config\nmy_own_key: 1\n'],
      ['bootcmd', '#cloud-config\nbootcmd:\n- echo hi\n'],
      ['ssh_pwauth a list', '#cloud-config\nssh_pwauth: [1]\n'],
    ];
    for (const [name, content] of configs) {
      const ours = validate({
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'CloudConfig',
        metadata: { name: 'c', namespace: 'p' },
        spec: { parts: [{ contentType: 'text/cloud-config', content }] },
      }).causes;
      const theirs = cloudInitSchema(content);
      assert.equal(ours.length === 0, theirs.ok, `${name}: ours ${JSON.stringify(ours.map((c) => c.message))}, cloud-init: ${theirs.output}`);
    }
  });
});
