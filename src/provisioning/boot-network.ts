// The boot service's network side on a real provisioning network: DHCP (full or proxy mode) and TFTP for
// Debian's iPXE, on the interface the operator names (`metalplane up --boot-interface br0`). The HTTP side —
// iPXE scripts by MAC, kernels, images — is the same /boot/v1 every machine uses (boot.ts).
import { existsSync } from 'node:fs';
import type { Logger } from '../runtime/logger.js';
import { interfaceAddress, LeasePool, parseRange, startDhcpServer, type DhcpMode, type DhcpServer } from './dhcp.js';
import { debianIpxeFiles, startTftpServer, type TftpServer } from './tftp.js';

export interface BootNetworkOptions {
  /** The interface machines netboot on, e.g. `br0`. */
  interface: string;
  /** `full` leases addresses from `range`; `proxy` (default) runs beside an existing DHCP server; `off`: none. */
  dhcp?: DhcpMode | 'off';
  /** Full mode: the addresses to lease, `10.0.0.100-10.0.0.199`. */
  range?: string;
  router?: string;
  dns?: string[];
  /** Where Debian's iPXE builds are (package `ipxe`); default /usr/lib/ipxe. */
  ipxeDir?: string;
  /** Ports, for tests (default 67 and 69). */
  dhcpPort?: number;
  tftpPort?: number;
}

export interface BootInterface {
  address: string;
  netmask: string;
  broadcast: string;
}

/** The interface's address, or an error saying what is wrong (checked before anything starts). */
export function resolveBootInterface(o: BootNetworkOptions): BootInterface {
  const a = interfaceAddress(o.interface);
  if (typeof a === 'string') throw new Error(`--boot-interface: ${a}`);
  if ((o.dhcp ?? 'proxy') === 'full') {
    if (!o.range) throw new Error('--dhcp full needs --dhcp-range <first>-<last> (addresses on the boot interface to lease)');
    const r = parseRange(o.range);
    if (typeof r === 'string') throw new Error(`--dhcp-range: ${r}`);
  }
  return a;
}

export interface BootNetwork {
  dhcp?: DhcpServer;
  tftp?: TftpServer;
  close(): Promise<void>;
}

export async function startBootNetwork(
  o: BootNetworkOptions,
  iface: BootInterface,
  deps: { httpBase: string; isEnrolled: (mac: string) => boolean; logger?: Logger },
): Promise<BootNetwork> {
  const mode = o.dhcp ?? 'proxy';
  const files = Object.fromEntries(Object.entries(debianIpxeFiles(o.ipxeDir)).filter(([, p]) => existsSync(p)));
  if (Object.keys(files).length === 0) deps.logger?.warn({ dir: o.ipxeDir ?? '/usr/lib/ipxe' }, 'boot: no iPXE builds found (apt-get install ipxe); PXE ROMs cannot chain to iPXE');
  // TFTP on the interface's address only: nothing else on this host needs to see it.
  const tftp = await startTftpServer({ files, bindAddress: iface.address, port: o.tftpPort ?? 69, logger: deps.logger });
  let dhcp: DhcpServer | undefined;
  if (mode !== 'off') {
    const range = o.range ? parseRange(o.range) : undefined;
    const pool = range && typeof range !== 'string' ? new LeasePool(range, [iface.address]) : undefined;
    dhcp = await startDhcpServer({
      mode,
      serverIp: iface.address,
      subnetMask: iface.netmask,
      httpBase: deps.httpBase,
      ...(o.router ? { router: o.router } : {}),
      ...(o.dns ? { dns: o.dns } : {}),
      broadcast: iface.broadcast,
      port: o.dhcpPort ?? 67,
      world: { isEnrolled: deps.isEnrolled, lease: (mac) => pool?.lease(mac) },
      logger: deps.logger,
    });
  }
  deps.logger?.info({ interface: o.interface, address: iface.address, dhcp: mode, tftp: Object.keys(files) }, 'boot service on the provisioning network');
  return {
    dhcp,
    tftp,
    async close() {
      await Promise.all([dhcp?.close(), tftp.close()]);
    },
  };
}
