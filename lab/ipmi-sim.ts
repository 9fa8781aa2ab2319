// OpenIPMI's `ipmi_sim` as a BMC: a LAN channel on a loopback (or namespace) UDP port, one administrator user,
// and chassis control delegated to lab/chassis-control.sh, which powers a QEMU machine (or, without one, only
// records the power state). Used by the IPMI driver's tests and by the lab.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** lab/ in the source tree (this file runs from dist/lab/). */
export const LAB_DIR = resolve(fileURLToPath(import.meta.url), '../../../lab');

export interface IpmiSimOptions {
  /** A directory of its own: configs, ipmi_sim's persistent state, the chassis state. */
  dir: string;
  host?: string;
  /** UDP port; default: a free one. */
  port?: number;
  username: string;
  password: string;
  /** The machine: a script chassis-control runs detached on power on (see chassis-control.sh). */
  machineStart?: string;
  /** Wrap the command (e.g. `['ip', 'netns', 'exec', 'lab']`). */
  prefix?: string[];
}

export interface IpmiSim {
  host: string;
  port: number;
  /** `ipmi://host:port`, as Hardware's spec.bmc.address. */
  address: string;
  /** chassis-control's state directory (`boot`, `power`, `events`, `machine.log`). */
  stateDir: string;
  process: ChildProcess;
  stop(): Promise<void>;
  output(): string;
}

export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res, rej) => {
    s.once('error', rej);
    s.bind(0, host, () => res());
  });
  const { port } = s.address();
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '')}"`;

export async function startIpmiSim(o: IpmiSimOptions): Promise<IpmiSim> {
  const host = o.host ?? '127.0.0.1';
  const port = o.port ?? (await freeUdpPort(host));
  const stateDir = join(o.dir, 'chassis');
  const simState = join(o.dir, 'state');
  await mkdir(stateDir, { recursive: true });
  await mkdir(simState, { recursive: true });
  if (o.machineStart) {
    await writeFile(join(stateDir, 'start'), `#!/bin/sh\nexec ${o.machineStart}\n`, { mode: 0o755 });
  }
  const auths = 'none md2 md5 straight';
  const lan = [
    'name "metalplane-lab"',
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr ${host} ${port}`,
    '    priv_limit admin',
    `    allowed_auths_callback ${auths}`,
    `    allowed_auths_user ${auths}`,
    `    allowed_auths_operator ${auths}`,
    `    allowed_auths_admin ${auths}`,
    '    guid a123456789abcdefa123456789abcdef',
    '  endlan',
    `  chassis_control ${quote(`${join(LAB_DIR, 'chassis-control.sh')} ${stateDir} 0x20`)}`,
    `  user 2 true ${quote(o.username)} ${quote(o.password)} admin 10 ${auths}`,
    '',
  ].join('\n');
  const emu = ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'mc_enable 0x20', ''].join('\n');
  await writeFile(join(o.dir, 'lan.conf'), lan, { mode: 0o600 });
  await writeFile(join(o.dir, 'bmc.emu'), emu);
  const argv = [...(o.prefix ?? []), 'ipmi_sim', '-c', join(o.dir, 'lan.conf'), '-f', join(o.dir, 'bmc.emu'), '-s', simState, '-n'];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer): void => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const sim: IpmiSim = {
    host,
    port,
    address: `ipmi://${host}:${port}`,
    stateDir,
    process: child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // Power the machine off with its BMC: nothing outlives the lab.
      const pid = await readFile(join(stateDir, 'machine.pid'), 'utf8').catch(() => '');
      if (/^\d+\s*$/.test(pid)) {
        try {
          process.kill(-Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    },
  };
  return sim;
}
