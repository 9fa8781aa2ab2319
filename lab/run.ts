// `npm run lab`: builds what is missing (the boot image, the Debian OS image; both cached in lab/build/), brings
// the lab up (a network namespace with a bridge, ipmi_sim as the BMC of a QEMU machine, `metalplane up --no-sim`
// with the boot service on the bridge), enrolls the machine and prints how to drive it with kubectl. Ctrl-C
// tears everything down. Needs root; see docs/lab.md for the packages.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_DIR } from './ipmi-sim.js';
import { LAB_OS_SLUG, startLab } from './lab.js';

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(
      [
        'Usage: npm run lab -- [--dir DIR] [--no-os]',
        '',
        'Builds the boot image and the Debian OS image when missing (cached in lab/build/), starts the lab and',
        'waits; Ctrl-C stops it. Needs root, qemu-system-x86, ipxe-qemu, openipmi, ipmitool, debootstrap,',
        'grub-pc-bin, busybox-static and kubectl (docs/lab.md).',
        '',
        '  --dir DIR   where the lab keeps its data dir, disk and logs (default: a new directory under /tmp)',
        '  --no-os     skip the OS image: discovery only',
        '',
      ].join('\n'),
    );
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('error: the lab needs root (network namespaces, a tap device); run it with sudo\n');
    return 1;
  }
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const dir = arg('--dir') ?? join('/tmp', `metalplane-lab-${Date.now().toString(36)}`);
  let osImage: { path: string; sha256: string } | undefined;
  if (!process.argv.includes('--no-os')) {
    const osDir = join(LAB_DIR, 'build', 'os');
    process.stderr.write('lab: the OS image (debootstrap, about 4 minutes the first time)…\n');
    const built = spawnSync('bash', [join(LAB_DIR, 'build-os-image.sh'), osDir], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (built.status !== 0) {
      process.stderr.write(`error: lab/build-os-image.sh exited ${built.status}; run with --no-os for discovery only\n`);
      return 1;
    }
    const path = join(osDir, 'debian-12.raw');
    osImage = { path, sha256: readFileSync(`${path}.sha256`, 'utf8').trim() };
  }
  const lab = await startLab({ dir, log: (l) => process.stderr.write(`lab: ${l}\n`), osImage });
  const kubectl = `ip netns exec ${lab.netns} kubectl --kubeconfig ${join(lab.dataDir, 'kubeconfig')}`;
  process.stdout.write(
    [
      '',
      `lab up in ${dir} (network namespace ${lab.netns}); the machine ${lab.hardwareName} is being discovered.`,
      '',
      `  ${kubectl} get hardware -w`,
      ...(osImage
        ? [
            `  ${kubectl} apply -f - <<'EOF'`,
            '  {"apiVersion":"metalplane.dev/v1alpha1","kind":"Device","metadata":{"name":"lab-1","namespace":"default"},',
            `   "spec":{"plan":"c3.small.x86","metro":"da","operatingSystem":"${LAB_OS_SLUG}"}}`,
            '  EOF',
            `  ${kubectl} get device lab-1 -w`,
          ]
        : []),
      `  tail -f ${join(dir, 'console.log')}        # the machine's serial console`,
      '',
      'Ctrl-C stops the lab.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stderr.write('lab: stopping\n');
  await lab.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
