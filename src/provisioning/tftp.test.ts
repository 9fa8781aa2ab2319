// The TFTP server: request parsing as a table, and whole transfers over a loopback socket.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseRequest, startTftpServer, TftpErrorCode } from './tftp.js';

const rrq = (...fields: string[]): Buffer => Buffer.concat([Buffer.from([0, 1]), ...fields.map((f) => Buffer.from(`${f}\0`, 'latin1'))]);

test('parseRequest: what is served, what is refused', () => {
  const rows: Array<{ name: string; buf: Buffer; want: { code: number; re: RegExp } | { filename: string; blksize?: number; tsize?: boolean } }> = [
    { name: 'plain read', buf: rrq('undionly.kpxe', 'octet'), want: { filename: 'undionly.kpxe' } },
    { name: 'options', buf: rrq('ipxe.efi', 'OCTET', 'blksize', '1432', 'tsize', '0'), want: { filename: 'ipxe.efi', blksize: 1432, tsize: true } },
    { name: 'blksize capped to a frame', buf: rrq('ipxe.efi', 'octet', 'blksize', '65464'), want: { filename: 'ipxe.efi', blksize: 1468 } },
    { name: 'oversized', buf: rrq('a'.repeat(600), 'octet'), want: { code: TftpErrorCode.illegalOperation, re: /larger than 512/ } },
    { name: 'write', buf: Buffer.concat([Buffer.from([0, 2]), Buffer.from('x\0octet\0')]), want: { code: TftpErrorCode.accessViolation, re: /read-only/ } },
    { name: 'unknown opcode', buf: Buffer.from([0, 9, 1, 0]), want: { code: TftpErrorCode.illegalOperation, re: /not a read request/ } },
    { name: 'not terminated', buf: Buffer.from([0, 1, 0x61, 0x62]), want: { code: TftpErrorCode.illegalOperation, re: /not NUL-terminated/ } },
    { name: 'no mode', buf: rrq('file'), want: { code: TftpErrorCode.illegalOperation, re: /needs a file name and a mode/ } },
    { name: 'netascii', buf: rrq('file', 'netascii'), want: { code: TftpErrorCode.illegalOperation, re: /use octet/ } },
    { name: 'too many options', buf: rrq('f', 'octet', ...Array.from({ length: 20 }, (_, i) => `o${i}`)), want: { code: TftpErrorCode.badOption, re: /more than 8 options/ } },
    { name: 'too short', buf: Buffer.from([0, 1]), want: { code: TftpErrorCode.illegalOperation, re: /too short/ } },
  ];
  for (const r of rows) {
    const got = parseRequest(r.buf);
    if ('code' in r.want) {
      assert.ok('error' in got, r.name);
      assert.equal(got.error.code, r.want.code, r.name);
      assert.match(got.error.message, r.want.re, r.name);
    } else {
      assert.ok('rrq' in got, r.name);
      assert.equal(got.rrq.filename, r.want.filename, r.name);
      assert.equal(got.rrq.blksize, r.want.blksize, r.name);
      assert.equal(got.rrq.tsize, r.want.tsize ?? false, r.name);
    }
  }
});

/** A minimal TFTP client: read one file, ACKing each block; returns the bytes or the error packet's text. */
async function tftpGet(port: number, request: Buffer): Promise<{ data?: Buffer; error?: string; oack?: string }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const chunks: Buffer[] = [];
  let oack: string | undefined;
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('tftp: no answer')), 10_000);
      s.on('message', (m, from) => {
        const op = m.readUInt16BE(0);
        if (op === 5) {
          clearTimeout(timer);
          return resolve({ error: m.toString('latin1', 4, m.length - 1) });
        }
        if (op === 6) {
          oack = m.toString('latin1', 2).replace(/\0/g, ' ').trim();
          return s.send(Buffer.from([0, 4, 0, 0]), from.port, from.address);
        }
        const block = m.readUInt16BE(2);
        chunks.push(m.subarray(4));
        s.send(Buffer.from([0, 4, block >> 8, block & 0xff]), from.port, from.address);
        const size = oack?.match(/blksize (\d+)/)?.[1];
        if (m.length - 4 < Number(size ?? 512)) {
          clearTimeout(timer);
          resolve({ data: Buffer.concat(chunks), ...(oack ? { oack } : {}) });
        }
      });
      s.send(request, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

test('TFTP transfers the served files and refuses everything else without stopping', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mp-tftp-'));
  const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
  await writeFile(join(dir, 'undionly.kpxe'), body);
  await writeFile(join(dir, 'exact.bin'), Buffer.alloc(1024, 7));
  await writeFile(join(dir, 'secret'), 'no');
  const server = await startTftpServer({ files: { 'undionly.kpxe': join(dir, 'undionly.kpxe'), 'exact.bin': join(dir, 'exact.bin') }, bindAddress: '127.0.0.1', port: 0, retryMs: 200 });
  try {
    const plain = await tftpGet(server.port, rrq('undionly.kpxe', 'octet'));
    assert.deepEqual(plain.data, body);
    const big = await tftpGet(server.port, rrq('undionly.kpxe', 'octet', 'blksize', '1400', 'tsize', '0'));
    assert.deepEqual(big.data, body);
    assert.equal(big.oack, 'blksize 1400 tsize 5000');
    // A size that is a multiple of the block ends with an empty block.
    assert.deepEqual((await tftpGet(server.port, rrq('exact.bin', 'octet'))).data, Buffer.alloc(1024, 7));
    const refusals: Array<[Buffer, RegExp]> = [
      [rrq('../secret', 'octet'), /no file \.\.\/secret/],
      [rrq('secret', 'octet'), /no file secret; served: undionly.kpxe, exact.bin/],
      [rrq('x'.repeat(700), 'octet'), /larger than 512/],
      [Buffer.concat([Buffer.from([0, 2]), Buffer.from('undionly.kpxe\0octet\0')]), /read-only/],
      [rrq('constructor', 'octet'), /no file constructor/],
    ];
    for (const [req, want] of refusals) assert.match((await tftpGet(server.port, req)).error ?? '', want);
    // Still serving after all that.
    assert.deepEqual((await tftpGet(server.port, rrq('undionly.kpxe', 'octet'))).data, body);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
