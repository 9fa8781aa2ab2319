// `npm run build:boot-image`: the agent's kernel and initramfs, from Debian packages only and without a
// root-owned install — `apt-get download` + `dpkg-deb -x` for the kernel (Debian's cloud kernel: small, virtio
// drivers as modules), busybox-static for the shell and tools, and this host's Node binary with its libraries
// running the same agent code as the simulated machines (dist/src/sim/agent.js via dist/lab/agent-main.js).
// Output: <out>/vmlinuz and <out>/initramfs (an uncompressed newc cpio: no decompression under emulation).
// Cached: nothing is rebuilt if both exist and the agent code did not change.
import { execFileSync } from 'node:child_process';
import { copyFileSync, chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_DIR } from './ipmi-sim.js';

const REPO = resolve(LAB_DIR, '..');
const MODULES = ['virtio', 'virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net', 'virtio_blk'];
const AGENT_FILES = ['dist/src/sim/agent.js', 'dist/src/sim/clock.js', 'dist/src/sim/faults.js', 'dist/lab/agent-main.js'];

const sh = (cmd: string, args: string[], cwd?: string): string => execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'inherit'] });

/** The kernel package linux-image-cloud-amd64 points at (e.g. linux-image-6.1.0-57-cloud-amd64). */
function kernelPackage(): string {
  const deps = sh('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const m = /Depends: (linux-image-[0-9][^\s]*-cloud-amd64)/.exec(deps);
  if (!m) throw new Error(`apt-cache depends linux-image-cloud-amd64 names no kernel package:\n${deps}`);
  return m[1]!;
}

/** The `depends=` of a kernel module's .modinfo section (comma-separated names, maybe empty). */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const start = at + '\0depends='.length;
  const end = ko.indexOf(0, start);
  return ko.subarray(start, end < 0 ? undefined : end).toString('latin1').split(',').filter(Boolean);
}

/**
 * The wanted modules and what they depend on, each after its dependencies (busybox's insmod resolves
 * nothing): e.g. virtio_ring before virtio, which needs its virtio_break_device. A module that is not in the
 * kernel package (built in) is left out.
 */
export function moduleLoadOrder(wanted: string[], read: (name: string) => Buffer | undefined): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: string, path: string[]): void => {
    if (state.get(m) === 'done') return;
    if (state.get(m) === 'visiting') throw new Error(`kernel modules depend on each other in a cycle: ${[...path, m].join(' → ')}`);
    const ko = read(m);
    if (!ko) return;
    state.set(m, 'visiting');
    for (const d of moduleDepends(ko)) visit(d, [...path, m]);
    state.set(m, 'done');
    order.push(m);
  };
  for (const m of wanted) visit(m, []);
  return order;
}

export function buildBootImage(out: string): { vmlinuz: string; initramfs: string; cached: boolean } {
  const vmlinuz = join(out, 'vmlinuz');
  const initramfs = join(out, 'initramfs');
  const agentHash = createHash('sha256');
  for (const f of AGENT_FILES) agentHash.update(readFileSync(join(REPO, f)));
  agentHash.update(readFileSync(join(LAB_DIR, 'boot-init.sh')));
  // And this builder: a change to how the image is made (modules, their order) rebuilds it.
  agentHash.update(readFileSync(fileURLToPath(import.meta.url)));
  const stamp = join(out, 'agent.sha256');
  const digest = agentHash.digest('hex');
  if (existsSync(vmlinuz) && existsSync(initramfs) && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return { vmlinuz, initramfs, cached: true };
  mkdirSync(out, { recursive: true });

  // The kernel: downloaded once, unpacked without installing.
  const debs = join(out, 'debs');
  mkdirSync(debs, { recursive: true });
  const pkg = kernelPackage();
  if (!readdirSync(debs).some((f) => f.startsWith(`${pkg}_`))) sh('apt-get', ['download', pkg], debs);
  const deb = join(debs, readdirSync(debs).find((f) => f.startsWith(`${pkg}_`))!);
  const kx = join(out, 'kernel');
  rmSync(kx, { recursive: true, force: true });
  sh('dpkg-deb', ['-x', deb, kx]);
  const version = pkg.replace(/^linux-image-/, '');
  copyFileSync(join(kx, 'boot', `vmlinuz-${version}`), vmlinuz);

  // The initramfs tree.
  const root = join(out, 'initramfs-root');
  rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'mnt', 'etc', 'lib/modules', 'usr/share/udhcpc', 'agent']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  // busybox --install would write into this host's /bin; the links are made by init at boot instead.
  const modDir = join(kx, 'lib/modules', version, 'kernel');
  const found = new Map<string, string>();
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.ko')) found.set(n.slice(0, -3), p);
    }
  };
  walk(modDir);
  const order = moduleLoadOrder(MODULES, (m) => {
    const p = found.get(m);
    return p ? readFileSync(p) : undefined;
  });
  for (const m of order) copyFileSync(found.get(m)!, join(root, 'lib/modules', `${m}.ko`));
  writeFileSync(join(root, 'lib/modules/order'), order.join('\n') + '\n');

  // Node and the shared libraries it links (ldd), at the same paths.
  const node = process.execPath;
  copyFileSync(node, join(root, 'bin/node'));
  chmodSync(join(root, 'bin/node'), 0o755);
  for (const line of sh('ldd', [node]).split('\n')) {
    const lib = /(\/\S+) \(0x/.exec(line)?.[1];
    if (!lib) continue;
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
  for (const f of AGENT_FILES) {
    mkdirSync(join(root, 'agent', dirname(f)), { recursive: true });
    copyFileSync(join(REPO, f), join(root, 'agent', f));
  }
  writeFileSync(join(root, 'agent/package.json'), '{ "type": "module" }\n');
  cpSync(join(LAB_DIR, 'boot-init.sh'), join(root, 'init'));
  chmodSync(join(root, 'init'), 0o755);
  writeFileSync(
    join(root, 'usr/share/udhcpc/default.script'),
    [
      '#!/bin/sh',
      '# udhcpc: configure the lease on the interface.',
      'case "$1" in',
      '  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;',
      '  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"; [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"; true ;;',
      'esac',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );

  // newc cpio, files owned by root.
  const list = sh('find', ['.', '-mindepth', '1'], root);
  execFileSync('sh', ['-c', `cpio -o -H newc -R 0:0 --quiet > "${initramfs}.tmp"`], { cwd: root, input: list, stdio: ['pipe', 'inherit', 'inherit'] });
  execFileSync('mv', [`${initramfs}.tmp`, initramfs]);
  writeFileSync(stamp, digest);
  rmSync(root, { recursive: true, force: true });
  rmSync(kx, { recursive: true, force: true });
  return { vmlinuz, initramfs, cached: false };
}

if (process.argv[1]?.endsWith('build-boot-image.js')) {
  const out = resolve(process.argv[2] ?? join(LAB_DIR, 'build', 'boot'));
  const t0 = Date.now();
  const r = buildBootImage(out);
  const mb = (p: string): string => `${(statSync(p).size / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(`boot image${r.cached ? ' (cached)' : ''}: ${r.vmlinuz} (${mb(r.vmlinuz)}), ${r.initramfs} (${mb(r.initramfs)}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
