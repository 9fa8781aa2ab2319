// The real-iron lab: a network namespace with a bridge (br0, 10.99.0.1/24) and a tap, OpenIPMI's ipmi_sim as
// the BMC of a QEMU machine (TCG, virtio NIC with Debian's iPXE ROM, an empty virtio disk) on that tap, and
// `metalplane up --no-sim` serving full DHCP, TFTP and HTTP boot on the bridge. The machine is enrolled as an
// operator would: a Secret with the BMC credentials and a Hardware with its IPMI address, NIC and disk. All
// traffic stays inside the namespace. `startLab` brings it up; `stop` tears every piece down.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { buildBootImage } from './build-boot-image.js';
import { LAB_DIR, startIpmiSim, type IpmiSim } from './ipmi-sim.js';

export const LAB_SUBNET = { server: '10.99.0.1', prefix: 24, range: '10.99.0.100-10.99.0.150' };
export const MACHINE_MAC = '52:54:00:6d:70:01';
const BMC_PORT = 6230;
const PORT = 7080;

export interface LabOptions {
  /** Working directory (data dir, disks, logs). */
  dir: string;
  /** Disk size of the machine, GiB. */
  diskGiB?: number;
  memoryMiB?: number;
  log?: (line: string) => void;
  /**
   * The OS image to install (lab/build-os-image.sh's output): served from the data dir at
   * /boot/v1/images/<name> and offered as the OperatingSystem `LAB_OS_SLUG` with its sha256.
   */
  osImage?: { path: string; sha256: string };
}

/** The OperatingSystem the lab offers when it has an OS image. */
export const LAB_OS_SLUG = 'debian_12_lab';

export interface Lab {
  netns: string;
  dataDir: string;
  dir: string;
  bmc: IpmiSim;
  /** kubectl inside the namespace, against the lab's metalplane. */
  kubectl(args: string[], input?: string): { status: number; stdout: string; stderr: string };
  /** The machine's serial console so far. */
  console(): string;
  /** What metalplane logged so far. */
  serverLog(): string;
  hardwareName: string;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** The machine as the BMC starts it: QEMU reads the boot override at power-on, as firmware does at POST. */
function machineScript(o: { dir: string; disk: string; memoryMiB: number }): string {
  const script = join(o.dir, 'machine.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      '# Powered on by lab/chassis-control.sh (ipmi_sim); PXE first when the BMC says so, else the disk first',
      '# (an empty disk falls through to the network).',
      `order=cn; [ "$(cat "${o.dir}/bmc/chassis/boot" 2>/dev/null)" = pxe ] && order=nc`,
      `echo "$(date +%s.%N) qemu boot order $order" >> "${o.dir}/machine-events"`,
      // graphics=off: SeaBIOS and iPXE print to the serial console (the log), not to a VGA nobody sees. The NIC
      // keeps QEMU's own iPXE ROM: naming `romfile=…/efi-virtio.rom` made SeaBIOS skip it ("No bootable device").
      'exec qemu-system-x86_64 -accel tcg -machine graphics=off -smp 1 -m ' + o.memoryMiB + ' -display none -monitor none \\',
      // Appended, so the log keeps every boot of the machine (a power cycle restarts QEMU).
      `  -chardev file,id=console,path=${o.dir}/console.log,append=on -serial chardev:console \\`,
      '  -boot order=$order,reboot-timeout=5000 \\',
      `  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=${MACHINE_MAC} \\`,
      `  -drive file=${o.disk},if=virtio,format=raw,file.locking=off`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return script;
}

export async function startLab(o: LabOptions): Promise<Lab> {
  const log = o.log ?? ((l: string) => process.stderr.write(`lab: ${l}\n`));
  const dir = resolve(o.dir);
  mkdirSync(dir, { recursive: true });
  const netns = `mp-lab-${randomBytes(3).toString('hex')}`;
  const inNs = ['ip', 'netns', 'exec', netns];
  const cleanups: Array<() => Promise<void> | void> = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log(`cleanup: ${(err as Error).message}`);
      }
    }
  };
  try {
    // What the machine boots, built once and cached under lab/build.
    const t0 = Date.now();
    const boot = buildBootImage(join(LAB_DIR, 'build', 'boot'));
    log(`boot image ${boot.cached ? 'cached' : `built in ${Date.now() - t0} ms`}`);

    run('ip', ['netns', 'add', netns]);
    cleanups.push(() => void run('ip', ['netns', 'delete', netns]));
    // The far end of the bridge's uplink lives in a namespace of its own (the rack's switch): in the lab's
    // namespace it would hand every broadcast back to the host stack a second time (two DHCP answers each).
    const switchNs = `${netns}-sw`;
    run('ip', ['netns', 'add', switchNs]);
    cleanups.push(() => void run('ip', ['netns', 'delete', switchNs]));
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'br0', 'type', 'bridge'],
      ['addr', 'add', `${LAB_SUBNET.server}/${LAB_SUBNET.prefix}`, 'dev', 'br0'],
      ['link', 'set', 'br0', 'up'],
      // A bridge whose only port is the tap of a machine that is off has no carrier, and an interface that is
      // not running has no addresses for Node (libuv lists only up-and-running ones). A veth port stands for the
      // rack's uplink and keeps br0 running while the machine is off (a veth, not a dummy: this kernel may lack
      // the dummy driver).
      ['link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1', 'netns', switchNs],
      ['link', 'set', 'uplink0', 'master', 'br0'],
      ['link', 'set', 'uplink0', 'up'],
      ['tuntap', 'add', 'tap0', 'mode', 'tap'],
      ['link', 'set', 'tap0', 'master', 'br0'],
      ['link', 'set', 'tap0', 'up'],
    ]) run('ip', ['netns', 'exec', netns, 'ip', ...args]);
    run('ip', ['netns', 'exec', switchNs, 'ip', 'link', 'set', 'uplink1', 'up']);

    const dataDir = join(dir, 'metalplane');
    mkdirSync(join(dataDir, 'boot'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dataDir, 'images'), { recursive: true });
    copyFileSync(boot.vmlinuz, join(dataDir, 'boot', 'vmlinuz'));
    copyFileSync(boot.initramfs, join(dataDir, 'boot', 'initramfs'));
    // A link, not a copy of half a gigabyte: the boot service follows it.
    const imageName = o.osImage ? basename(o.osImage.path) : undefined;
    if (o.osImage) symlinkSync(resolve(o.osImage.path), join(dataDir, 'images', imageName!));

    const disk = join(dir, 'disk.raw');
    run('truncate', ['-s', `${o.diskGiB ?? 4}G`, disk]);

    const password = randomBytes(9).toString('base64url');
    const bmc = await startIpmiSim({
      dir: join(dir, 'bmc'),
      host: '127.0.0.1',
      port: BMC_PORT,
      username: 'admin',
      password,
      machineStart: machineScript({ dir, disk, memoryMiB: o.memoryMiB ?? 1536 }),
      prefix: inNs,
    });
    cleanups.push(() => bmc.stop());

    const serverLogPath = join(dir, 'metalplane.log');
    const server: ChildProcess = spawn(
      inNs[0]!,
      [
        ...inNs.slice(1),
        process.execPath,
        join(LAB_DIR, '..', 'bin', 'metalplane.js'),
        'up',
        '--no-sim',
        '--data-dir',
        dataDir,
        '--listen',
        `0.0.0.0:${PORT}`,
        '--boot-interface',
        'br0',
        '--dhcp',
        'full',
        '--dhcp-range',
        LAB_SUBNET.range,
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let serverOut = '';
    const keep = (b: Buffer): void => {
      serverOut += b.toString();
      if (serverOut.length > 4_000_000) serverOut = serverOut.slice(-2_000_000);
    };
    server.stdout!.on('data', keep);
    server.stderr!.on('data', keep);
    cleanups.push(async () => {
      writeFileSync(serverLogPath, serverOut);
      server.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      if (server.exitCode === null) server.kill('SIGKILL');
    });
    const kubeconfig = join(dataDir, 'kubeconfig');
    for (let i = 0; !existsSync(kubeconfig) || !/metalplane ready/.test(serverOut); i++) {
      if (server.exitCode !== null) throw new Error(`metalplane exited ${server.exitCode}:\n${serverOut.slice(-3000)}`);
      if (i > 600) throw new Error(`metalplane did not become ready:\n${serverOut.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const kubectl = (args: string[], input?: string) => {
      const r = spawnSync(inNs[0]!, [...inNs.slice(1), 'kubectl', '--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', input, timeout: 60_000 });
      return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };

    // Enrollment, as an operator does it.
    const hardwareName = 'lab-qemu-01';
    const diskGB = Math.round(((o.diskGiB ?? 4) * 2 ** 30) / 1e9);
    const manifest: Array<{ apiVersion: string; kind: string } & Record<string, unknown>> = [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bmc-lab-qemu-01', namespace: 'metalplane-system' }, stringData: { username: 'admin', password } },
      {
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'Hardware',
        metadata: { name: hardwareName },
        spec: {
          metro: 'da',
          facility: 'da11',
          plan: 'c3.small.x86',
          bmc: { driver: 'ipmi', address: `ipmi://127.0.0.1:${BMC_PORT}`, credentialsSecret: { name: 'bmc-lab-qemu-01', namespace: 'metalplane-system' } },
          nics: [{ name: 'eth0', mac: MACHINE_MAC, pxe: true }],
          disks: [{ device: '/dev/vda', sizeGB: diskGB }],
        },
      },
    ];
    if (o.osImage) {
      manifest.push({
        apiVersion: 'metalplane.dev/v1alpha1',
        kind: 'OperatingSystem',
        metadata: { name: LAB_OS_SLUG.replace(/_/g, '-') },
        spec: {
          slug: LAB_OS_SLUG,
          name: 'Debian 12 (lab image)',
          distro: 'debian',
          version: '12',
          family: 'debian',
          provisionableOn: ['c3.small.x86'],
          image: { url: `http://${LAB_SUBNET.server}:${PORT}/boot/v1/images/${imageName}`, checksum: `sha256:${o.osImage.sha256}`, format: 'raw' },
          workflow: 'debian-install',
        },
      });
    }
    for (const obj of manifest) {
      const applied = kubectl(['apply', '-f', '-'], JSON.stringify(obj));
      if (applied.status !== 0) throw new Error(`enrolling the machine (${obj.kind}): ${applied.stderr}`);
    }
    log(`enrolled ${hardwareName} (BMC ipmi://127.0.0.1:${BMC_PORT} in ${netns})`);

    return {
      netns,
      dataDir,
      dir,
      bmc,
      kubectl,
      hardwareName,
      console: () => (existsSync(join(dir, 'console.log')) ? readFileSync(join(dir, 'console.log'), 'utf8') : ''),
      serverLog: () => serverOut,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
