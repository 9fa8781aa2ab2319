import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moduleDepends, moduleLoadOrder } from './build-boot-image.js';

// A .ko's .modinfo section is NUL-separated key=value strings; these stand in for real modules.
const ko = (fields: string[]): Buffer => Buffer.from(`\x7fELF...\0${fields.join('\0')}\0trailing`, 'latin1');

test('moduleDepends reads the depends= field of .modinfo', () => {
  assert.deepEqual(moduleDepends(ko(['license=GPL', 'depends=virtio_ring,virtio', 'name=virtio_blk'])), ['virtio_ring', 'virtio']);
  assert.deepEqual(moduleDepends(ko(['license=GPL', 'depends=', 'name=virtio_ring'])), []);
  assert.deepEqual(moduleDepends(ko(['license=GPL'])), []);
});

test('moduleLoadOrder puts every module after what it depends on, as Debian 6.1 virtio needs', () => {
  // Debian 6.1's real graph: virtio needs virtio_ring's virtio_break_device.
  const mods: Record<string, string[]> = {
    virtio: ['virtio_ring'],
    virtio_ring: [],
    virtio_pci: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio'],
    virtio_pci_modern_dev: [],
    virtio_pci_legacy_dev: [],
    virtio_net: ['virtio_ring', 'virtio', 'net_failover'],
    net_failover: ['failover'],
    failover: [],
    virtio_blk: ['virtio', 'virtio_ring'],
  };
  const read = (m: string) => (m in mods ? ko([`depends=${mods[m]!.join(',')}`]) : undefined);
  const order = moduleLoadOrder(['virtio', 'virtio_pci', 'virtio_net', 'virtio_blk'], read);
  assert.equal(new Set(order).size, order.length, 'each module once');
  assert.deepEqual([...order].sort(), Object.keys(mods).sort(), 'dependencies are pulled in');
  for (const [m, deps] of Object.entries(mods)) for (const d of deps) assert.ok(order.indexOf(d) < order.indexOf(m), `${d} before ${m}: ${order.join(' ')}`);
});

test('moduleLoadOrder leaves out built-in modules and refuses a cycle', () => {
  assert.deepEqual(moduleLoadOrder(['a'], (m) => (m === 'a' ? ko(['depends=builtin']) : undefined)), ['a']);
  const cyc: Record<string, string> = { a: 'b', b: 'a' };
  assert.throws(() => moduleLoadOrder(['a'], (m) => ko([`depends=${cyc[m]}`])), /cycle: a → b → a/);
});
