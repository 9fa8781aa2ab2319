// The real agent's image writer, against a real HTTP server and a file standing in for the disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeImage } from './agent-main.js';
import { ImageChecksumMismatch, parseImageChecksum } from '../src/sim/agent.js';

const image = randomBytes(3 << 20);
const sha256 = createHash('sha256').update(image).digest('hex');

async function serve(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/boot/v1/images/debian-12.raw`, close: () => new Promise((r) => srv.close(() => r())) };
}

function disk(): { path: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mp-agent-'));
  const path = join(dir, 'vda');
  writeFileSync(path, Buffer.alloc(4 << 20, 0xee));
  return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('parseImageChecksum takes what the OperatingSystem schema admits, and nothing else', () => {
  const table: Array<[string, ReturnType<typeof parseImageChecksum>]> = [
    [`sha256:${sha256}`, { algorithm: 'sha256', hex: sha256 }],
    [`sha256:${sha256.toUpperCase()}`, { algorithm: 'sha256', hex: sha256 }],
    [`sha512:${'ab'.repeat(64)}`, { algorithm: 'sha512', hex: 'ab'.repeat(64) }],
    [`sha256:${sha256.slice(1)}`, undefined],
    [`sha512:${sha256}`, undefined],
    [`md5:${'0'.repeat(32)}`, undefined],
    [sha256, undefined],
    [`sha256:${'g'.repeat(64)}`, undefined],
  ];
  for (const [input, want] of table) assert.deepEqual(parseImageChecksum(input), want, input);
});

test('writeImage streams the image onto the disk in place, checks it and reports progress below 100 %', async (t) => {
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': image.length });
    // In pieces, so progress has something to report.
    let off = 0;
    const next = (): void => {
      if (off >= image.length) return void res.end();
      res.write(image.subarray(off, (off += 256 << 10)), next);
    };
    next();
  });
  const d = disk();
  t.after(async () => (await srv.close(), d.done()));
  const progress: number[] = [];
  let wiped = 0;
  const out = await writeImage({ url: srv.url, device: d.path, checksum: parseImageChecksum(`sha256:${sha256}`), progress: async (p) => void progress.push(p), wipe: () => void wiped++, progressEveryMs: 0 });
  assert.deepEqual(out, { bytes: image.length, digest: sha256 });
  const written = readFileSync(d.path);
  assert.equal(written.length, 4 << 20, 'written in place: the disk keeps its size');
  assert.ok(written.subarray(0, image.length).equals(image), 'the image is on the disk');
  assert.ok(written.subarray(image.length).every((b) => b === 0xee), 'nothing past the image was touched');
  assert.equal(wiped, 0);
  assert.ok(progress.length > 0, 'progress was reported');
  assert.ok(progress.every((p, i) => p >= 0 && p < 100 && (i === 0 || p >= progress[i - 1]!)), `progress rises below 100: ${progress.join(',')}`);
});

test('writeImage: a wrong checksum wipes the disk and fails with ImageChecksumMismatch; a short stream fails', async (t) => {
  let short = false;
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': image.length });
    if (short) return void res.end(image.subarray(0, 1000), () => res.socket?.destroy());
    res.end(image);
  });
  const d = disk();
  t.after(async () => (await srv.close(), d.done()));
  const wiped: string[] = [];
  const wrong = parseImageChecksum(`sha256:${'0'.repeat(64)}`);
  await assert.rejects(
    writeImage({ url: srv.url, device: d.path, checksum: wrong, progress: async () => {}, wipe: (dev) => void wiped.push(dev) }),
    (err: Error) => err instanceof ImageChecksumMismatch && err.message.includes(sha256) && /wiped/.test(err.message),
  );
  assert.deepEqual(wiped, [d.path], 'the disk was wiped');
  short = true;
  await assert.rejects(writeImage({ url: srv.url, device: d.path, progress: async () => {}, wipe: () => {} }), (err: Error) => !(err instanceof ImageChecksumMismatch));
});
