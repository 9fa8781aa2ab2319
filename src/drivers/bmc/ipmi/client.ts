// The IPMI BMC driver: IPMI 2.0 over LAN (RMCP+, cipher suite 3), the chassis commands Ironic's ipmitool driver
// and Tinkerbell's rufio use — Get Chassis Status, Chassis Control, Set/Get System Boot Options (parameter 5,
// boot flags). One session per operation, closed after it: BMCs allow few concurrent sessions, and a session
// left open by a crashed controller expires on the BMC by itself.
import { isIP } from 'node:net';
import {
  BmcError,
  type BmcClient,
  type BmcCredentials,
  type BmcDriver,
  type BmcEndpoint,
  type BootDevice,
  type PowerAction,
  type PowerState,
  type SystemInfo,
} from '../types.js';
import { withSession, type IpmiSession, type SessionTarget } from './session.js';

export interface IpmiDriverOptions {
  /** What one operation (a session, its commands, the close) may take. Default 8000. */
  timeoutMs?: number;
  /** How long to wait for one answer before sending again. Default 1000. */
  retryMs?: number;
}

/** The standard RMCP port. */
export const IPMI_PORT = 623;
/** IPMI 2.0 limits (§22.28–22.29): user names of 16 bytes, passwords of 20. */
const MAX_USERNAME_BYTES = 16;
const MAX_PASSWORD_BYTES = 20;

const NetFn = { chassis: 0x00 } as const;
const Cmd = { getChassisStatus: 0x01, chassisControl: 0x02, setBootOptions: 0x08, getBootOptions: 0x09 } as const;
const BOOT_FLAGS_PARAM = 5;

/** Chassis Control data byte (§28.3). Soft-off is an ACPI shutdown request. */
const CONTROL: Record<PowerAction, number> = { off: 0x00, on: 0x01, cycle: 0x02, reset: 0x03, 'soft-off': 0x05 };

/** Boot device selector, bits 5:2 of boot flags data byte 2 (§28.13, parameter 5). */
const SELECTOR: Record<BootDevice, number> = { pxe: 0x1, disk: 0x2, cdrom: 0x5, bios: 0x6 };
const DEVICE_OF_SELECTOR = new Map<number, BootDevice>(Object.entries(SELECTOR).map(([d, s]) => [s, d as BootDevice]));

/** Parses `ipmi://host[:port]`: the form Hardware's `spec.bmc.address` takes for driver ipmi. */
export function parseIpmiAddress(address: string): { host: string; port: number } | string {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return `"${address}" is not a URL; expected ipmi://<host>[:<port>], e.g. ipmi://10.0.0.5 or ipmi://127.0.0.1:6230`;
  }
  if (url.protocol !== 'ipmi:') return `"${address}" has scheme ${url.protocol.slice(0, -1)}; an IPMI BMC is addressed as ipmi://<host>[:<port>]`;
  if (url.username || url.password) return `"${address}" carries credentials; they belong in the credentials Secret`;
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) return `"${address}" has a path or query; expected ipmi://<host>[:<port>]`;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') return `"${address}" names no host`;
  return { host, port: url.port === '' ? IPMI_PORT : Number(url.port) };
}

export class IpmiDriver implements BmcDriver {
  private readonly timeoutMs: number;
  private readonly retryMs: number;

  constructor(opts: IpmiDriverOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 8000;
    this.retryMs = opts.retryMs ?? 1000;
  }

  connect(endpoint: BmcEndpoint, credentials: BmcCredentials): BmcClient {
    const parsed = parseIpmiAddress(endpoint.address);
    if (typeof parsed === 'string') throw new BmcError('rejected', `ipmi: BMC address ${parsed}`);
    if (Buffer.byteLength(credentials.username) > MAX_USERNAME_BYTES) {
      throw new BmcError('rejected', `ipmi ${endpoint.address}: user name is longer than IPMI's ${MAX_USERNAME_BYTES} bytes`);
    }
    if (Buffer.byteLength(credentials.password) > MAX_PASSWORD_BYTES) {
      throw new BmcError('rejected', `ipmi ${endpoint.address}: password is longer than IPMI 2.0's ${MAX_PASSWORD_BYTES} bytes`);
    }
    if (isIP(parsed.host) === 0 && !/^[A-Za-z0-9.-]+$/.test(parsed.host)) throw new BmcError('rejected', `ipmi: BMC host "${parsed.host}" is not a host name`);
    return new IpmiClient({ ...parsed, ...credentials, deadlineMs: this.timeoutMs, retryMs: this.retryMs });
  }
}

class IpmiClient implements BmcClient {
  constructor(private readonly t: SessionTarget) {}

  system(): Promise<SystemInfo> {
    return withSession(this.t, 'read the system', async (s) => ({
      powerState: await chassisPower(s),
      bootOverride: await bootFlags(s),
    }));
  }

  powerState(): Promise<PowerState> {
    return withSession(this.t, 'read the power state', chassisPower);
  }

  setPower(action: PowerAction): Promise<void> {
    return withSession(this.t, `power ${action}`, async (s) => {
      const power = await chassisPower(s);
      // As the contract allows: nothing to do for on when on, off when off. Cycle and reset of a machine that is
      // off are refused by most BMCs (0xd5); a machine that is off and asked to cycle is powered on.
      if ((action === 'on' && power === 'on') || ((action === 'off' || action === 'soft-off') && power === 'off')) return;
      const control = (action === 'cycle' || action === 'reset') && power === 'off' ? CONTROL.on : CONTROL[action];
      await s.command({ netFn: NetFn.chassis, cmd: Cmd.chassisControl, data: [control] });
    });
  }

  setBootDevice(device: BootDevice, opts: { once?: boolean } = {}): Promise<void> {
    return withSession(this.t, `set boot device ${device}`, async (s) => {
      // Byte 1: valid (bit 7), persistent (bit 6) unless once; byte 2: the device selector.
      const flags1 = 0x80 | (opts.once ? 0 : 0x40);
      await s.command({ netFn: NetFn.chassis, cmd: Cmd.setBootOptions, data: [BOOT_FLAGS_PARAM, flags1, SELECTOR[device] << 2, 0, 0, 0] });
    });
  }
}

async function chassisPower(s: IpmiSession): Promise<PowerState> {
  const d = await s.command({ netFn: NetFn.chassis, cmd: Cmd.getChassisStatus });
  if (d.length < 1) throw new BmcError('protocol', 'ipmi: Get Chassis Status answered without the power state');
  return (d[0]! & 0x01) === 0x01 ? 'on' : 'off';
}

async function bootFlags(s: IpmiSession): Promise<SystemInfo['bootOverride']> {
  const d = await s.command({ netFn: NetFn.chassis, cmd: Cmd.getBootOptions, data: [BOOT_FLAGS_PARAM, 0, 0] });
  // Parameter version, parameter number (bit 7: invalid/locked), then the five data bytes.
  if (d.length < 4) throw new BmcError('protocol', `ipmi: Get System Boot Options answered ${d.length} bytes, expected at least 4`);
  const device = DEVICE_OF_SELECTOR.get((d[3]! >> 2) & 0x0f);
  if (device === undefined) return { device: 'none', once: false };
  return { device, once: (d[2]! & 0x40) === 0 };
}
