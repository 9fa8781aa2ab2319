// Real iron, in a network namespace: a QEMU machine (TCG) whose BMC is OpenIPMI's ipmi_sim is enrolled by an
// operator (Hardware with an ipmi:// BMC, credentials in a Secret). metalplane powers it on over IPMI 2.0; its
// iPXE ROM gets an address and the script URL from metalplane's DHCP, boots the agent's kernel and initramfs
// over HTTP, and the real agent (the sim's protocol code run by Node) pins the CA, registers the inventory it
// reads from /proc and /sys: the Hardware becomes `available`. Then a Device applied with kubectl installs the
// Debian image (checksum verified), reboots into it, and the OS runs the device's user data through real
// cloud-init, which reports back through the user-state URL and phones home: `active`. Deleting the device
// wipes the disk and the machine is `available` again. Stage timings go to bench/results/lab.json.
//
// Needs root (network namespaces), qemu-system-x86, ipxe-qemu, openipmi, kubectl, and for the OS image
// debootstrap and grub-pc-bin with Debian's mirror (built once, cached in lab/build/). In CI a missing tool fails
// the test; elsewhere it skips saying what to install.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LAB_DIR } from '../lab/ipmi-sim.js';
import { LAB_OS_SLUG, MACHINE_MAC, startLab, type Lab } from '../lab/lab.js';
import { toolSkipReason } from './helpers/server.js';

const MINUTES = 60_000;
const DEVICE = 'lab-1';
const PROOF = 'cloud-init ran the user data of lab-1';

type Json = Record<string, any>;

/** Bounded polling at 1 s: TCG on shared cores. */
async function poll<T>(what: string, minutes: number, probe: () => T | undefined, describe: () => string): Promise<T> {
  const deadline = Date.now() + minutes * MINUTES;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${minutes} min\n${describe()}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const tools: Array<[string[], string]> = [
  [['sh', '-c', 'command -v qemu-system-x86_64'], 'install qemu-system-x86'],
  [['sh', '-c', 'command -v ipmi_sim'], 'install openipmi'],
  [['sh', '-c', 'test -e /usr/share/qemu/pxe-virtio.rom || test -e /usr/lib/ipxe/qemu/pxe-virtio.rom'], 'install ipxe-qemu'],
  [['sh', '-c', 'command -v debootstrap && test -e /usr/lib/grub/i386-pc/boot.img'], 'install debootstrap and grub-pc-bin (for the OS image)'],
  [['sh', '-c', 'command -v kubectl'], 'kubectl on PATH'],
  [['sh', '-c', 'test "$(id -u)" = 0 && ip netns list >/dev/null'], 'run as root with iproute2 (network namespaces)'],
];

const skip = tools.map(([probe, hint]) => toolSkipReason(probe, hint)).find((why) => why !== undefined) ?? false;

describe('lab: a QEMU machine behind ipmi_sim, provisioned by metalplane', { timeout: 40 * MINUTES, skip }, () => {
  let lab: Lab | undefined;
  let dir = '';
  const stages: Record<string, number> = {};
  const t0 = Date.now();
  let diag: (l: string) => void = () => {};

  const kubectlJson = (args: string[]): Json => {
    const r = lab!.kubectl([...args, '-o', 'json']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Json;
  };
  const context = (): string => `--- console ---\n${lab!.console().slice(-4000)}\n--- metalplane ---\n${lab!.serverLog().slice(-3000)}`;

  before(async () => {
    // The OS image: built once (debootstrap, ~4 min), then cached.
    const osDir = join(LAB_DIR, 'build', 'os');
    const built = spawnSync('bash', [join(LAB_DIR, 'build-os-image.sh'), osDir], { encoding: 'utf8', timeout: 20 * MINUTES });
    assert.equal(built.status, 0, `lab/build-os-image.sh failed:\n${built.stdout}\n${built.stderr}`);
    stages.osImageBuild = Date.now() - t0;
    const image = join(osDir, 'debian-12.raw');
    dir = mkdtempSync(join(tmpdir(), 'mp-lab-'));
    lab = await startLab({ dir, log: (l) => diag(l), osImage: { path: image, sha256: readFileSync(`${image}.sha256`, 'utf8').trim() } });
    stages.labUp = Date.now() - t0 - stages.osImageBuild;
  });
  after(async () => {
    if (lab) {
      mkdirSync('bench/results', { recursive: true });
      writeFileSync('bench/results/lab.json', JSON.stringify({ when: new Date().toISOString(), accel: 'tcg', vcpus: 1, stagesMs: stages }, null, 2) + '\n');
      // What the machine and metalplane printed, for reading the timings (not committed).
      writeFileSync('bench/results/lab-console.log', lab.console());
      writeFileSync('bench/results/lab-metalplane.log', lab.serverLog());
      await lab.stop();
    }
    if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  });

  test('discovery: powered on over IPMI, netboots, the real agent registers what it finds → available', async (t) => {
    diag = (l) => t.diagnostic(l);
    const started = Date.now();
    const seen = new Set<string>();
    const mark = (name: string, hit: boolean): void => {
      if (hit && !seen.has(name)) (seen.add(name), (stages[`discovery.${name}`] = Date.now() - started));
    };
    const hw = await poll('Hardware available', 15, () => {
      const h = kubectlJson(['get', 'hardware', lab!.hardwareName]);
      mark('dhcpAnswered', /dhcp: answering/.test(lab!.serverLog()));
      mark('agentRegistered', h.status?.agent?.bootId !== undefined);
      const state = String(h.status?.state ?? '');
      if (state === 'failed') throw new Error(`Hardware failed: ${JSON.stringify(h.status?.conditions)}\n${context()}`);
      return state === 'available' ? h : undefined;
    }, context);
    mark('available', true);
    // What the real agent found on the real (emulated) machine.
    const inv = hw.status.inventory;
    assert.deepEqual(inv.macs, [MACHINE_MAC]);
    assert.deepEqual(inv.disks.map((d: { device: string }) => d.device), ['/dev/vda']);
    assert.equal(inv.cpus, 1);
    assert.match(String(hw.status.agent.version), /metalplane-sim-agent/);
    // The agent checked the CA against the pin before it spoke TLS.
    assert.match(lab!.console(), /server CA matches the pin/);
    // The BMC powered the machine on (chassis-control's log).
    assert.match(readFileSync(join(lab!.bmc.stateDir, 'events'), 'utf8'), /\bon\n/);
  });

  test('provision: kubectl apply of a Device installs Debian, cloud-init runs its user data and phones home → active', async (t) => {
    // The user data writes a file and sends its contents to metalplane through the user-state URL it reads from
    // the Equinix-style metadata (found by the machine's address); python3 comes with cloud-init.
    const post =
      "import json,urllib.request as u; m=json.load(u.urlopen('http://10.99.0.1:7080/metadata')); " +
      "u.urlopen(u.Request(m['user_state_url'], data=json.dumps({'state':'succeeded','code':1000,'message':open('/root/proof').read().strip()}).encode(), headers={'content-type':'application/json'}))";
    const userData = ['#cloud-config', 'write_files:', '  - path: /root/proof', `    content: "${PROOF}"`, 'runcmd:', `  - [python3, -c, ${JSON.stringify(post)}]`, ''].join('\n');
    const device = {
      apiVersion: 'metalplane.dev/v1alpha1',
      kind: 'Device',
      metadata: { name: DEVICE, namespace: 'default' },
      spec: { plan: 'c3.small.x86', metro: 'da', operatingSystem: LAB_OS_SLUG, hostname: DEVICE, userData },
    };
    const applied = lab!.kubectl(['apply', '-f', '-'], JSON.stringify(device));
    assert.equal(applied.status, 0, applied.stderr);
    const started = Date.now();
    const seen = new Set<string>();
    const dev = await poll('Device active', 25, () => {
      const d = kubectlJson(['get', 'device', DEVICE, '-n', 'default']);
      const wfs = kubectlJson(['get', 'workflows', '-A', '-l', `metalplane.dev/device=${DEVICE}`]).items as Json[];
      for (const wf of wfs.filter((w) => w.spec?.purpose === 'provision')) {
        for (const a of (wf.status?.actions ?? []) as Json[]) {
          if ((a.state === 'succeeded' || a.state === 'skipped') && !seen.has(a.name)) (seen.add(a.name), (stages[`provision.${a.name}`] = Date.now() - started));
        }
      }
      // Inside the installed OS's boot, from its serial console: Debian's kernel is the one GRUB gave root=/dev/vda1.
      const osBoot = lab!.console().split('root=/dev/vda1').slice(1).join('root=/dev/vda1');
      for (const [name, re] of [
        ['os.kernel', /./],
        ['os.network', /Reached target .*Network\b/],
        ['os.cloudInitNetwork', /Finished .*cloud-init\.service/],
        ['os.cloudInitFinal', /Cloud-init v\. .* finished/],
      ] as const) {
        if (!seen.has(name) && osBoot && re.test(osBoot)) (seen.add(name), (stages[`provision.${name}`] = Date.now() - started));
      }
      const state = String(d.status?.state ?? '');
      if (state === 'failed') throw new Error(`Device failed: ${JSON.stringify(d.status?.conditions)}\n${JSON.stringify(wfs.map((w) => w.status?.failure))}\n${context()}`);
      return state === 'active' ? d : undefined;
    }, context);
    stages['provision.active'] = Date.now() - started;
    assert.equal(dev.status.hardware, lab!.hardwareName);
    // The installed OS ran the user data: the file it wrote came back through the user-state URL.
    const events = await poll('the user-state event', 2, () => {
      const evs = (kubectlJson(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${DEVICE}`]).items as Json[]).map((e) => `${e.reason}: ${e.message}`);
      return evs.some((e) => e.includes(PROOF)) ? evs : undefined;
    }, context);
    assert.ok(events.some((e) => e.startsWith('UserStateSucceeded') && e.includes(PROOF)), events.join('\n'));
    // It was the image we named, checked by the agent, that booted.
    assert.match(lab!.console(), /image written/);
    assert.match(lab!.console(), /metalplane-lab login:|Cloud-init .* finished/);
  });

  test('delete: the device is deprovisioned, the disk wiped, the machine available again', async (t) => {
    const deleted = lab!.kubectl(['delete', 'device', DEVICE, '-n', 'default', '--wait=false']);
    assert.equal(deleted.status, 0, deleted.stderr);
    const started = Date.now();
    await poll('Device gone and Hardware available', 15, () => {
      const gone = lab!.kubectl(['get', 'device', DEVICE, '-n', 'default']).status !== 0;
      const h = kubectlJson(['get', 'hardware', lab!.hardwareName]);
      return gone && h.status?.state === 'available' ? true : undefined;
    }, context);
    stages['deprovision.available'] = Date.now() - started;
    // The wipe zeroed the partition table and the start of the filesystem (the agent fsyncs before it reports).
    const head = Buffer.alloc(1 << 20);
    const fd = openSync(join(dir, 'disk.raw'), 'r');
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
    assert.ok(head.every((b) => b === 0), 'the first MiB of the disk is zero: no partition table, no boot loader');
    t.diagnostic(`stages (ms): ${JSON.stringify(stages)}`);
  });
});
