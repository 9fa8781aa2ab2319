// DHCP for the provisioning network (RFC 2131/2132, PXE options of RFC 4578), in two modes, as smee and dnsmasq
// run it: `full` leases addresses from a range to enrolled machines and tells them what to boot; `proxy` runs
// beside an existing DHCP server, hands out no address and answers only PXE clients with the boot file. Which
// file: iPXE (user class "iPXE") gets the HTTP URL of its script, keyed by MAC; a firmware PXE ROM gets Debian's
// iPXE over TFTP (undionly.kpxe for BIOS, ipxe.efi for x86-64 UEFI), which then asks again as iPXE.
//
// Only MACs of enrolled Hardware are answered: an unknown machine on the provisioning network gets nothing from
// us (its own DHCP server, if any, still serves it). The parsing is bounded and total — any datagram gives a
// request or a reason — and the decision (`answerDhcp`) is a pure function; the socket is at the edge.
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../runtime/logger.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const MAGIC = 0x63825363;
/** A DHCP message travels in one Ethernet frame; anything longer is not one (RFC 2131 needs only 576). */
export const MAX_DHCP_BYTES = 1500;
const HEADER_BYTES = 236;

export const MessageType = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8 } as const;

const Opt = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dns: 6,
  hostname: 12,
  requestedIp: 50,
  leaseTime: 51,
  messageType: 53,
  serverId: 54,
  vendorClass: 60,
  tftpServer: 66,
  bootFile: 67,
  userClass: 77,
  clientArch: 93,
  clientUuid: 97,
  vendorSpecific: 43,
  end: 255,
} as const;

export interface DhcpRequest {
  op: number;
  xid: number;
  flags: number;
  ciaddr: string;
  giaddr: string;
  /** Lower case, colon separated. */
  mac: string;
  type: number;
  requestedIp?: string;
  serverId?: string;
  vendorClass?: string;
  userClass?: string;
  /** RFC 4578 client system architecture (0 BIOS, 7/9 x86-64 UEFI). */
  arch?: number;
  /** Option 97, kept byte for byte: PXE clients want it echoed. */
  clientUuid?: Buffer;
}

/** Parses a datagram sent to the server port; a string says why it is not a DHCP request we can use. */
export function parseDhcp(buf: Buffer): DhcpRequest | string {
  if (buf.length > MAX_DHCP_BYTES) return `datagram of ${buf.length} bytes is longer than any DHCP message (${MAX_DHCP_BYTES})`;
  if (buf.length < HEADER_BYTES + 4) return `datagram of ${buf.length} bytes is shorter than a DHCP header`;
  if (buf[0] !== 1) return `op ${buf[0]} is not a BOOTREQUEST`;
  if (buf[1] !== 1 || buf[2] !== 6) return `hardware type ${buf[1]}/length ${buf[2]} is not Ethernet`;
  if (buf.readUInt32BE(HEADER_BYTES) !== MAGIC) return 'no DHCP magic cookie (a plain BOOTP request?)';
  const options = new Map<number, Buffer>();
  let i = HEADER_BYTES + 4;
  for (;;) {
    if (i >= buf.length) break; // a missing END is tolerated, as clients in the wild omit it
    const code = buf[i]!;
    if (code === Opt.end) break;
    if (code === Opt.pad) {
      i++;
      continue;
    }
    if (i + 1 >= buf.length) return `option ${code} has no length byte`;
    const len = buf[i + 1]!;
    if (i + 2 + len > buf.length) return `option ${code} of ${len} bytes runs past the end of the message`;
    const value = buf.subarray(i + 2, i + 2 + len);
    // RFC 3396: a repeated option continues the earlier one.
    const prev = options.get(code);
    options.set(code, prev ? Buffer.concat([prev, value]) : value);
    i += 2 + len;
  }
  const type = options.get(Opt.messageType);
  if (!type || type.length !== 1) return 'no DHCP message type (option 53)';
  const mac = [...buf.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  const req: DhcpRequest = { op: 1, xid: buf.readUInt32BE(4), flags: buf.readUInt16BE(10), ciaddr: ip(buf, 12), giaddr: ip(buf, 24), mac, type: type[0]! };
  const requested = options.get(Opt.requestedIp);
  if (requested?.length === 4) req.requestedIp = ip(requested, 0);
  const server = options.get(Opt.serverId);
  if (server?.length === 4) req.serverId = ip(server, 0);
  const vendor = options.get(Opt.vendorClass);
  if (vendor) req.vendorClass = printable(vendor);
  const user = options.get(Opt.userClass);
  if (user) req.userClass = printable(user);
  const arch = options.get(Opt.clientArch);
  if (arch && arch.length >= 2) req.arch = arch.readUInt16BE(0);
  const uuid = options.get(Opt.clientUuid);
  if (uuid && uuid.length === 17) req.clientUuid = Buffer.from(uuid);
  return req;
}

export type DhcpMode = 'full' | 'proxy';

export interface DhcpConfig {
  mode: DhcpMode;
  /** Our address on the provisioning network: server id, TFTP server. */
  serverIp: string;
  subnetMask: string;
  /** The plain-HTTP base URL machines reach metalplane at, e.g. `http://10.0.0.1:7080`. */
  httpBase: string;
  router?: string;
  dns?: string[];
  leaseSeconds?: number;
}

export interface DhcpReply {
  type: number;
  yiaddr: string;
  /** Boot file: in the BOOTP `file` field and option 67. */
  file: string;
  /** Who to send it to (and how): the relay, the client's address, or broadcast. */
  to: 'relay' | 'client' | 'broadcast';
}

export type DhcpDecision = { reply: DhcpReply } | { ignore: string };

export interface DhcpWorld {
  /** Whether this MAC is an enrolled machine's NIC. */
  isEnrolled(mac: string): boolean;
  /** Full mode: the address leased to this MAC (allocating one if it has none); undefined when the range is full. */
  lease(mac: string): string | undefined;
}

/** What to boot, by who is asking: iPXE gets its script by HTTP, firmware PXE gets iPXE by TFTP. */
export function bootFileFor(req: DhcpRequest, httpBase: string): string | undefined {
  if (req.userClass?.includes('iPXE')) return `${httpBase}/boot/v1/ipxe?mac=${req.mac}`;
  switch (req.arch ?? 0) {
    case 0:
      return 'undionly.kpxe';
    case 7:
    case 9:
      return 'ipxe.efi';
    default:
      return undefined;
  }
}

export function answerDhcp(req: DhcpRequest, cfg: DhcpConfig, world: DhcpWorld): DhcpDecision {
  if (!world.isEnrolled(req.mac)) return { ignore: `${req.mac} is not a NIC of any Hardware` };
  const pxe = req.vendorClass?.startsWith('PXEClient') === true || req.userClass?.includes('iPXE') === true;
  const file = pxe ? bootFileFor(req, cfg.httpBase) : undefined;
  if (pxe && file === undefined) return { ignore: `${req.mac}: no boot file for client architecture ${req.arch}` };
  const to: DhcpReply['to'] = req.giaddr !== '0.0.0.0' ? 'relay' : req.ciaddr !== '0.0.0.0' ? 'client' : 'broadcast';
  if (cfg.mode === 'proxy') {
    // Beside another DHCP server: boot information only, and only for PXE clients.
    if (!pxe) return { ignore: `${req.mac} is not a PXE client; proxy mode answers only PXE clients` };
    if (req.type === MessageType.discover) return { reply: { type: MessageType.offer, yiaddr: '0.0.0.0', file: file!, to } };
    if (req.type === MessageType.request && req.serverId === cfg.serverIp) return { reply: { type: MessageType.ack, yiaddr: '0.0.0.0', file: file!, to } };
    return { ignore: `proxy mode: nothing to answer to message type ${req.type}` };
  }
  switch (req.type) {
    case MessageType.discover: {
      const addr = world.lease(req.mac);
      if (!addr) return { ignore: `${req.mac}: the address range is exhausted` };
      return { reply: { type: MessageType.offer, yiaddr: addr, file: file ?? '', to } };
    }
    case MessageType.request: {
      // Selecting another server's offer: not ours to answer.
      if (req.serverId !== undefined && req.serverId !== cfg.serverIp) return { ignore: `${req.mac} chose server ${req.serverId}` };
      const addr = world.lease(req.mac);
      const wanted = req.requestedIp ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined);
      if (!addr || wanted !== addr) return { reply: { type: MessageType.nak, yiaddr: '0.0.0.0', file: '', to: to === 'client' ? 'broadcast' : to } };
      return { reply: { type: MessageType.ack, yiaddr: addr, file: file ?? '', to } };
    }
    default:
      return { ignore: `message type ${req.type} needs no answer` };
  }
}

export function encodeReply(req: DhcpRequest, r: DhcpReply, cfg: DhcpConfig): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + 4);
  b[0] = 2; // BOOTREPLY
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(req.xid >>> 0, 4);
  b.writeUInt16BE(req.flags & 0x8000, 10);
  putIp(b, 16, r.yiaddr);
  putIp(b, 20, r.type === MessageType.nak ? '0.0.0.0' : cfg.serverIp);
  putIp(b, 24, req.giaddr);
  Buffer.from(req.mac.split(':').map((h) => parseInt(h, 16))).copy(b, 28);
  // The BOOTP file field holds 127 bytes and a NUL; longer names go only in option 67.
  if (r.file.length < 128) b.write(r.file, 108, 'latin1');
  b.writeUInt32BE(MAGIC, HEADER_BYTES);
  const opts: Buffer[] = [opt(Opt.messageType, [r.type]), opt(Opt.serverId, ipBytes(cfg.serverIp))];
  if (r.type !== MessageType.nak) {
    if (r.yiaddr !== '0.0.0.0') {
      opts.push(opt(Opt.leaseTime, u32(cfg.leaseSeconds ?? 3600)), opt(Opt.subnetMask, ipBytes(cfg.subnetMask)));
      if (cfg.router) opts.push(opt(Opt.router, ipBytes(cfg.router)));
      if (cfg.dns?.length) opts.push(opt(Opt.dns, cfg.dns.flatMap(ipBytes)));
    }
    if (r.file !== '') {
      opts.push(opt(Opt.tftpServer, Buffer.from(cfg.serverIp)), opt(Opt.bootFile, Buffer.from(r.file, 'latin1')));
      // PXE clients need to hear "PXEClient" back; discovery control 8: boot the file named here, no boot
      // server discovery (PXE spec 2.1, option 43 sub-option 6).
      opts.push(opt(Opt.vendorClass, Buffer.from('PXEClient')), opt(Opt.vendorSpecific, [6, 1, 8, 255]));
      if (req.clientUuid) opts.push(opt(Opt.clientUuid, req.clientUuid));
    }
  }
  opts.push(Buffer.from([Opt.end]));
  return Buffer.concat([b, ...opts]);
}

function opt(code: number, value: Buffer | number[]): Buffer {
  const v = Buffer.from(value);
  if (v.length > 255) throw new Error(`DHCP option ${code} of ${v.length} bytes`);
  return Buffer.concat([Buffer.from([code, v.length]), v]);
}

function ip(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipBytes(s: string): number[] {
  return s.split('.').map(Number);
}

function putIp(b: Buffer, at: number, s: string): void {
  Buffer.from(ipBytes(s)).copy(b, at);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function printable(b: Buffer): string {
  return b.toString('latin1').replace(/[^\x20-\x7e]/g, '');
}

export function ipToInt(s: string): number {
  return ipBytes(s).reduce((n, x) => n * 256 + x, 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parses `a.b.c.d-a.b.c.e` into a range of addresses; a string says what is wrong. */
export function parseRange(s: string): { first: number; last: number } | string {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (!m || ![m[1]!, m[2]!].every((a) => a.split('.').every((x) => Number(x) <= 255))) return `"${s}" is not a range like 10.0.0.100-10.0.0.199`;
  const first = ipToInt(m[1]!);
  const last = ipToInt(m[2]!);
  if (last < first) return `"${s}": the last address comes before the first`;
  if (last - first > 65_535) return `"${s}": at most 65536 addresses`;
  return { first, last };
}

/** Leases in memory, one address per MAC for the life of the process: enough for a provisioning network. */
export class LeasePool {
  private readonly byMac = new Map<string, string>();
  private readonly taken = new Set<string>();
  private next: number;

  constructor(
    private readonly range: { first: number; last: number },
    reserved: string[] = [],
  ) {
    this.next = range.first;
    for (const r of reserved) this.taken.add(r);
  }

  lease(mac: string): string | undefined {
    const had = this.byMac.get(mac);
    if (had) return had;
    for (let n = 0; n <= this.range.last - this.range.first; n++) {
      const candidate = intToIp(this.next);
      this.next = this.next >= this.range.last ? this.range.first : this.next + 1;
      if (this.taken.has(candidate)) continue;
      this.taken.add(candidate);
      this.byMac.set(mac, candidate);
      return candidate;
    }
    return undefined;
  }

  /** The MAC holding an address (the boot service can check a machine's peer address against it). */
  holder(addr: string): string | undefined {
    for (const [mac, a] of this.byMac) if (a === addr) return mac;
    return undefined;
  }
}

/** The IPv4 address, netmask and broadcast address of a named interface. */
export function interfaceAddress(name: string): { address: string; netmask: string; broadcast: string } | string {
  const all = networkInterfaces();
  const v4 = (all[name] ?? []).find((a) => a.family === 'IPv4');
  if (!v4) {
    const known = Object.keys(all).join(', ');
    // Node lists only interfaces that are up and running: a bridge without carrier is absent too.
    return `interface ${name} has no IPv4 address${all[name] ? '' : ` (no such interface, or it is down or has no carrier; this host has ${known} up)`}`;
  }
  const bcast = (ipToInt(v4.address) | (~ipToInt(v4.netmask) >>> 0)) >>> 0;
  return { address: v4.address, netmask: v4.netmask, broadcast: intToIp(bcast) };
}

export interface DhcpServerOptions extends DhcpConfig {
  world: DhcpWorld;
  /** Where broadcast replies go (the interface's broadcast address: a limited broadcast needs a route). */
  broadcast: string;
  bindAddress?: string;
  port?: number;
  clientPort?: number;
  logger?: Logger;
}

export interface DhcpServer {
  port: number;
  close(): Promise<void>;
}

export async function startDhcpServer(o: DhcpServerOptions): Promise<DhcpServer> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const clientPort = o.clientPort ?? DHCP_CLIENT_PORT;
  socket.on('message', (msg, rinfo) => {
    const req = parseDhcp(msg);
    if (typeof req === 'string') {
      o.logger?.debug({ from: rinfo.address, why: req }, 'dhcp: ignoring a datagram');
      return;
    }
    const d = answerDhcp(req, o, o.world);
    if ('ignore' in d) {
      o.logger?.debug({ mac: req.mac, why: d.ignore }, 'dhcp: not answering');
      return;
    }
    const out = encodeReply(req, d.reply, o);
    const [host, port] = d.reply.to === 'relay' ? [req.giaddr, o.port ?? DHCP_SERVER_PORT] : d.reply.to === 'client' ? [req.ciaddr, clientPort] : [o.broadcast, clientPort];
    o.logger?.info({ mac: req.mac, type: d.reply.type, yiaddr: d.reply.yiaddr, file: d.reply.file }, 'dhcp: answering');
    socket.send(out, port, host, (err) => {
      if (err) o.logger?.warn({ err: err.message, mac: req.mac }, 'dhcp: reply not sent');
    });
  });
  socket.on('error', (err) => o.logger?.warn({ err: err.message }, 'dhcp: socket error'));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(o.port ?? DHCP_SERVER_PORT, o.bindAddress ?? '0.0.0.0', () => {
      socket.off('error', reject);
      socket.setBroadcast(true);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
