// A read-only TFTP server (RFC 1350, with the blksize and tsize options of RFC 2347–2349) for the few files
// firmware PXE ROMs fetch before they can speak HTTP: Debian's iPXE builds (undionly.kpxe, ipxe.efi). Only
// files named in `files` are served, by exact name (no paths, so no traversal); writes are refused. A request is
// parsed within bounds (one datagram of at most 512 bytes, NUL-terminated fields, a bounded option count) and
// anything else gets a TFTP error, never a crash. Each transfer runs on its own socket with bounded retries;
// the number of transfers at once is capped.
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../runtime/logger.js';

export const TFTP_PORT = 69;
/** RFC 1350: a request fits in 512 bytes. */
export const MAX_REQUEST_BYTES = 512;
const MAX_OPTIONS = 8;
const DEFAULT_BLOCK = 512;
/** Ethernet MTU minus IP, UDP and TFTP headers. */
const MAX_BLOCK = 1468;

const Op = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;
export const TftpErrorCode = { undefined: 0, notFound: 1, accessViolation: 2, illegalOperation: 4, badOption: 8 } as const;

export interface ReadRequest {
  filename: string;
  mode: string;
  blksize?: number;
  /** The client asked for the transfer size (`tsize` 0). */
  tsize: boolean;
}

export type ParsedRequest = { rrq: ReadRequest } | { error: { code: number; message: string } };

export function parseRequest(buf: Buffer): ParsedRequest {
  const refuse = (code: number, message: string): ParsedRequest => ({ error: { code, message } });
  if (buf.length > MAX_REQUEST_BYTES) return refuse(TftpErrorCode.illegalOperation, `request of ${buf.length} bytes is larger than ${MAX_REQUEST_BYTES}`);
  if (buf.length < 4) return refuse(TftpErrorCode.illegalOperation, 'request too short');
  const op = buf.readUInt16BE(0);
  if (op === Op.wrq) return refuse(TftpErrorCode.accessViolation, 'this server is read-only');
  if (op !== Op.rrq) return refuse(TftpErrorCode.illegalOperation, `opcode ${op} is not a read request`);
  const fields: string[] = [];
  let at = 2;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) return refuse(TftpErrorCode.illegalOperation, 'a request field is not NUL-terminated');
    fields.push(buf.toString('latin1', at, end));
    at = end + 1;
    if (fields.length > 2 + 2 * MAX_OPTIONS) return refuse(TftpErrorCode.badOption, `more than ${MAX_OPTIONS} options`);
  }
  const [filename, mode, ...opts] = fields;
  if (!filename || mode === undefined) return refuse(TftpErrorCode.illegalOperation, 'a read request needs a file name and a mode');
  if (mode.toLowerCase() !== 'octet') return refuse(TftpErrorCode.illegalOperation, `mode ${JSON.stringify(mode.slice(0, 20))} is not supported; use octet`);
  const rrq: ReadRequest = { filename, mode: 'octet', tsize: false };
  for (let i = 0; i + 1 < opts.length; i += 2) {
    const name = opts[i]!.toLowerCase();
    const value = opts[i + 1]!;
    if (name === 'blksize') {
      const n = Number(value);
      // RFC 2348: 8–65464; we cap at one Ethernet frame.
      if (Number.isInteger(n) && n >= 8) rrq.blksize = Math.min(n, MAX_BLOCK);
    } else if (name === 'tsize') rrq.tsize = true;
    // Unknown options are ignored, as RFC 2347 says.
  }
  return { rrq };
}

export function errorPacket(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([0, Op.error, 0, code]), Buffer.from(message.slice(0, 200), 'latin1'), Buffer.from([0])]);
}

function dataPacket(block: number, data: Buffer): Buffer {
  const h = Buffer.from([0, Op.data, (block >> 8) & 0xff, block & 0xff]);
  return Buffer.concat([h, data]);
}

function oackPacket(opts: Record<string, string>): Buffer {
  const parts = Object.entries(opts).flatMap(([k, v]) => [Buffer.from(k), Buffer.from([0]), Buffer.from(v), Buffer.from([0])]);
  return Buffer.concat([Buffer.from([0, Op.oack]), ...parts]);
}

export interface TftpServerOptions {
  /** Served name → path on disk, e.g. `{ 'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe' }`. */
  files: Record<string, string>;
  bindAddress?: string;
  port?: number;
  /** Per-packet wait for an ACK before sending again (default 1000 ms), and how many tries (default 5). */
  retryMs?: number;
  retries?: number;
  maxTransfers?: number;
  logger?: Logger;
}

export interface TftpServer {
  port: number;
  close(): Promise<void>;
}

export async function startTftpServer(o: TftpServerOptions): Promise<TftpServer> {
  const socket = dgram.createSocket('udp4');
  const transfers = new Set<dgram.Socket>();
  const max = o.maxTransfers ?? 32;
  socket.on('message', (msg, peer) => {
    const parsed = parseRequest(msg);
    const reply = (b: Buffer): void => socket.send(b, peer.port, peer.address);
    if ('error' in parsed) {
      o.logger?.debug({ from: peer.address, why: parsed.error.message }, 'tftp: refused');
      return reply(errorPacket(parsed.error.code, parsed.error.message));
    }
    const path = Object.hasOwn(o.files, parsed.rrq.filename) ? o.files[parsed.rrq.filename] : undefined;
    if (!path) return reply(errorPacket(TftpErrorCode.notFound, `no file ${parsed.rrq.filename.slice(0, 100)}; served: ${Object.keys(o.files).join(', ')}`));
    if (transfers.size >= max) return reply(errorPacket(TftpErrorCode.undefined, 'too many transfers at once; try again'));
    void send(parsed.rrq, path, peer).catch((err: Error) => o.logger?.warn({ err: err.message, file: parsed.rrq.filename }, 'tftp: transfer failed'));
  });
  socket.on('error', (err) => o.logger?.warn({ err: err.message }, 'tftp: socket error'));

  async function send(rrq: ReadRequest, path: string, peer: dgram.RemoteInfo): Promise<void> {
    const data = await readFile(path);
    const t = dgram.createSocket('udp4');
    transfers.add(t);
    try {
      await new Promise<void>((res) => t.bind(0, o.bindAddress, () => res()));
      const block = rrq.blksize ?? DEFAULT_BLOCK;
      const blocks = Math.floor(data.length / block) + 1;
      if (blocks > 0xffff) {
        t.send(errorPacket(TftpErrorCode.undefined, 'file too large for this block size'), peer.port, peer.address);
        return;
      }
      const opts: Record<string, string> = {};
      if (rrq.blksize) opts.blksize = String(block);
      if (rrq.tsize) opts.tsize = String(data.length);
      // With options, block 0 is the OACK and its ACK starts the data.
      let n = Object.keys(opts).length > 0 ? 0 : 1;
      for (; n <= blocks; n++) {
        const packet = n === 0 ? oackPacket(opts) : dataPacket(n, data.subarray((n - 1) * block, n * block));
        const ok = await sendAndAwaitAck(t, packet, n, peer);
        if (!ok) return;
      }
      o.logger?.info({ file: rrq.filename, to: peer.address, bytes: data.length }, 'tftp: sent');
    } finally {
      if (transfers.delete(t)) t.close();
    }
  }

  function sendAndAwaitAck(t: dgram.Socket, packet: Buffer, n: number, peer: dgram.RemoteInfo): Promise<boolean> {
    const tries = o.retries ?? 5;
    return new Promise((resolve) => {
      let attempt = 0;
      let timer: NodeJS.Timeout | undefined;
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        t.off('message', onMessage);
        resolve(ok);
      };
      const onMessage = (m: Buffer, from: dgram.RemoteInfo): void => {
        if (from.port !== peer.port || from.address !== peer.address) {
          // RFC 1350: a packet from a stranger on a transfer's port gets an error, and the transfer goes on.
          t.send(errorPacket(5, 'unknown transfer id'), from.port, from.address);
          return;
        }
        if (m.length >= 4 && m.readUInt16BE(0) === Op.error) return done(false);
        if (m.length >= 4 && m.readUInt16BE(0) === Op.ack && m.readUInt16BE(2) === (n & 0xffff)) done(true);
      };
      const fire = (): void => {
        if (attempt++ >= tries || !transfers.has(t)) return done(false);
        t.send(packet, peer.port, peer.address);
        timer = setTimeout(fire, o.retryMs ?? 1000);
      };
      t.on('message', onMessage);
      fire();
    });
  }

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(o.port ?? TFTP_PORT, o.bindAddress ?? '0.0.0.0', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    async close() {
      for (const t of transfers) t.close();
      transfers.clear();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/** Debian's iPXE builds (package `ipxe`), by the names the DHCP server hands out. */
export function debianIpxeFiles(dir = '/usr/lib/ipxe'): Record<string, string> {
  return { 'undionly.kpxe': `${dir}/undionly.kpxe`, 'ipxe.efi': `${dir}/ipxe.efi`, 'snponly.efi': `${dir}/snponly.efi` };
}
