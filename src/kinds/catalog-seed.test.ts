import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catalogSeed } from './catalog-seed.js';
import { KindRegistry } from './index.js';
import { compileValidator } from './validation.js';

const registry = new KindRegistry();
const seed = catalogSeed();
const specsOf = (kind: string) =>
  seed.filter((o) => o.kind === kind).map((o) => ({ name: o.metadata.name!, spec: o.spec as Record<string, unknown> }));

test('every seeded object passes Strict validation against its own kind', () => {
  assert.ok(seed.length > 30);
  for (const obj of seed) {
    const kind = registry.byApiVersionKind(obj.apiVersion, obj.kind);
    assert.ok(kind, `${obj.apiVersion} ${obj.kind} is registered`);
    const r = compileValidator(kind)(obj, { fieldValidation: 'Strict' });
    assert.deepEqual(r.causes, [], `${obj.kind}/${obj.metadata.name}`);
    assert.deepEqual(r.unknownFields, [], `${obj.kind}/${obj.metadata.name}`);
  }
});

test('the catalog has what the brief promises, consistently cross-referenced', () => {
  const metros = new Set(specsOf('Metro').map((m) => m.name));
  for (const code of ['da', 'ny', 'sv', 'am', 'fr', 'sg', 'sy', 'ty']) assert.ok(metros.has(code), code);
  const facilities = specsOf('Facility');
  for (const code of ['da11', 'da6', 'ny5', 'ny7', 'sv15', 'sv16', 'am6', 'fr2', 'sg1', 'sy4', 'ty11']) {
    assert.ok(facilities.some((f) => f.name === code), code);
  }
  for (const f of facilities) assert.ok(metros.has(String(f.spec.metro)), `${f.name} is in a seeded metro`);
  const plans = specsOf('Plan');
  assert.deepEqual(
    plans.map((p) => p.name),
    ['c3.small.x86', 'c3.medium.x86', 'm3.small.x86', 'm3.large.x86', 's3.xlarge.x86', 'n3.xlarge.x86'],
  );
  for (const p of plans) {
    for (const m of p.spec.availableIn as string[]) assert.ok(metros.has(m), `${p.name} offered in seeded metro ${m}`);
    assert.ok((p.spec.pricing as { hour: number }).hour > 0);
  }
  const slugs = specsOf('OperatingSystem').map((o) => o.spec.slug);
  assert.deepEqual(slugs, ['ubuntu_24_04', 'ubuntu_22_04', 'debian_12', 'rocky_9', 'flatcar_stable', 'custom_ipxe']);
  for (const os of specsOf('OperatingSystem')) {
    const patterns = (os.spec.provisionableOn as string[]).map((p) => new RegExp(`^${p.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`));
    assert.ok(plans.some((p) => patterns.some((re) => re.test(p.name))), `${os.name} installs on some seeded plan`);
  }
});

test('catalogSeed returns fresh objects each call', () => {
  const a = catalogSeed();
  (a[0]!.metadata.labels as Record<string, string>).x = 'y';
  assert.equal(catalogSeed()[0]!.metadata.labels!.x, undefined);
});
