// The provisioning agent on a real machine: the same protocol code as the simulated one (src/sim/agent.ts),
// run by Node inside the boot image's initramfs, with a host that touches the real hardware. It reads its
// parameters from the kernel command line, fetches the server's CA over plain HTTP and trusts it only if its
// SHA-256 matches the pin iPXE handed over (`metalplane.ca_sha256`), then talks TLS to `metalplane.url`
// trusting only that CA. Inventory comes from /proc and /sys; wipe zeroes the partition tables and signatures
// at both ends of each disk; stream-image writes the image onto the boot disk; write-datasource mounts the
// installed root and points cloud-init's NoCloud at metalplane.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { cpus, totalmem } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ImageChecksumMismatch, runAgent, type AgentHost, type AgentInventory, type AgentParams, type ImageChecksum, type InstallImageOptions } from '../src/sim/agent.js';
import { FaultSet } from '../src/sim/faults.js';
import type { Logger } from '../src/runtime/logger.js';

const WIPE_BYTES = 16 << 20;
const PROGRESS_EVERY_MS = 5_000;
const mib = (n: number): number => Math.round(n / 2 ** 20);

/** `metalplane.*=` from a kernel command line. */
export function paramsFromCmdline(cmdline: string): AgentParams | string {
  const kv = new Map<string, string>();
  for (const word of cmdline.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (word.startsWith('metalplane.') && eq > 0) kv.set(word.slice('metalplane.'.length, eq), word.slice(eq + 1));
  }
  const url = kv.get('url');
  const hardware = kv.get('hardware');
  const bootId = kv.get('boot');
  const token = kv.get('token');
  const caSha256 = kv.get('ca_sha256');
  if (!url || !hardware || !bootId || !token || !caSha256) return 'the kernel command line needs metalplane.url, .hardware, .boot, .token and .ca_sha256 (from the iPXE script)';
  return { url, hardware, bootId, token, caSha256 };
}

/** Fetches `{server}/boot/v1/ca.crt` over plain HTTP and returns it only if it is the pinned CA. */
export async function fetchPinnedCa(tlsUrl: string, pin: string): Promise<string> {
  const u = new URL(tlsUrl);
  const plain = `http://${u.host}/boot/v1/ca.crt`;
  const pem = await new Promise<string>((resolve, reject) => {
    http
      .get(plain, { timeout: 15_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (body.length > 64 * 1024) res.destroy(new Error('CA answer too large'));
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${plain}: HTTP ${res.statusCode}`))));
        res.on('error', reject);
      })
      .on('error', reject)
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error(`GET ${plain}: timeout`));
      });
  });
  const der = new X509Certificate(pem).raw;
  const got = createHash('sha256').update(der).digest('hex');
  if (got !== pin.toLowerCase()) throw new Error(`the CA served at ${plain} has SHA-256 ${got}, not the pinned ${pin}: refusing to talk to this server`);
  return pem;
}

function consoleLogger(): Logger {
  const out = (level: string) => (obj: object, msg?: string) => process.stdout.write(`agent ${level}: ${msg ?? ''} ${JSON.stringify(obj)}\n`);
  return { debug: () => {}, info: out('info'), warn: out('warn'), error: out('error') };
}

export function realInventory(): AgentInventory {
  const macs = readdirSync('/sys/class/net')
    .filter((n) => n !== 'lo')
    .map((n) => readFileSync(`/sys/class/net/${n}/address`, 'utf8').trim().toLowerCase())
    .filter((m) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m) && m !== '00:00:00:00:00:00');
  return { cpus: cpus().length, memoryGiB: Math.max(1, Math.round(totalmem() / 2 ** 30)), macs, disks: realDisks() };
}

function realDisks(): Array<{ device: string; sizeGB: number }> {
  return readdirSync('/sys/block')
    .filter((n) => !/^(loop|ram|sr|zram|md|dm-)/.test(n))
    .map((n) => ({ device: `/dev/${n}`, sizeGB: Math.max(1, Math.round((Number(readFileSync(`/sys/block/${n}/size`, 'utf8')) * 512) / 1e9)) }));
}

function sectors(device: string): number {
  return Number(readFileSync(`/sys/block/${device.replace('/dev/', '')}/size`, 'utf8'));
}

/** Zeroes the first and last 16 MiB: partition tables (MBR, GPT and its backup), filesystem and RAID signatures. */
export function wipeDisk(device: string): void {
  const bytes = sectors(device) * 512;
  const zero = Buffer.alloc(1 << 20);
  const fd = openSync(device, 'r+');
  try {
    for (const start of [0, Math.max(0, bytes - WIPE_BYTES)]) {
      for (let off = start; off < Math.min(bytes, start + WIPE_BYTES); off += zero.length) writeSync(fd, zero, 0, Math.min(zero.length, bytes - off), off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams the image at `url` onto `device` (a block device, or any file opened in place), hashing what it
 * writes and reporting progress about every 5 s. When a checksum is given and the bytes differ, the device is
 * wiped (a half-right image must not boot at the next power-on) and ImageChecksumMismatch is thrown.
 */
export async function writeImage(o: {
  url: string;
  device: string;
  checksum?: ImageChecksum;
  progress: InstallImageOptions['progress'];
  wipe: (device: string) => void;
  progressEveryMs?: number;
}): Promise<{ bytes: number; digest: string }> {
  const hash = createHash(o.checksum?.algorithm ?? 'sha256');
  const every = o.progressEveryMs ?? PROGRESS_EVERY_MS;
  let bytes = 0;
  const res = await getStream(o.url);
  const total = Number(res.headers['content-length']) || undefined;
  let lastReport = Date.now();
  let reporting: Promise<void> = Promise.resolve();
  await pipeline(
    res,
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        // Without holding the stream for the post; a lost post is superseded by the next.
        if (total && Date.now() - lastReport >= every) {
          lastReport = Date.now();
          const pct = Math.min(99, Math.floor((bytes / total) * 100));
          reporting = reporting.then(() => o.progress(pct, `streamed ${mib(bytes)} of ${mib(total)} MiB to ${o.device}`)).catch(() => undefined);
        }
        cb(null, chunk);
      },
    }),
    createWriteStream(o.device, { flags: 'r+' }),
  );
  await reporting;
  if (total !== undefined && bytes !== total) throw new Error(`the image stream ended after ${bytes} of ${total} bytes`);
  const digest = hash.digest('hex');
  if (o.checksum && digest !== o.checksum.hex) {
    o.wipe(o.device);
    throw new ImageChecksumMismatch(`the ${mib(bytes)} MiB streamed have ${o.checksum.algorithm} ${digest}, not the OperatingSystem's ${o.checksum.hex}; the disk was wiped`);
  }
  return { bytes, digest };
}

export async function main(): Promise<void> {
  const logger = consoleLogger();
  const params = paramsFromCmdline(readFileSync('/proc/cmdline', 'utf8'));
  if (typeof params === 'string') throw new Error(params);
  const ca = await fetchPinnedCa(params.url, params.caSha256!);
  logger.info({ url: params.url, hardware: params.hardware }, 'server CA matches the pin');
  const agentTls = new https.Agent({ ca, keepAlive: true, maxSockets: 4 });
  let installed = false;
  const host: AgentHost = {
    id: params.hardware,
    // On a real machine the console is the kernel's: the agent's lines go to stdout, which the serial console shows.
    console: (text: string) => void process.stdout.write(`metalplane-agent: ${text}\n`),
    speed: 'max',
    faults: new FaultSet(),
    logger,
    inventory: realInventory,
    disks: realDisks,
    request: (url, init) => httpsRequest(agentTls, url, init),
    wipeDisk,
    async installImage(_os, url, { checksum, progress }) {
      const device = realDisks()[0]!.device;
      const { bytes, digest } = await writeImage({ url, device, checksum, progress, wipe: wipeDisk });
      logger.info({ url, device, bytes, [checksum?.algorithm ?? 'sha256']: digest }, 'image written');
      execFileSync('sync');
      // The new partition table, so that /dev/vda1 exists for write-datasource.
      execFileSync('blockdev', ['--rereadpt', device]);
      installed = true;
    },
    hasInstalledImage: () => installed,
    writeDatasource(seedfrom, instanceId) {
      const device = realDisks()[0]!.device;
      const part = existsSync(`${device}1`) ? `${device}1` : `${device}p1`;
      mkdirSync('/mnt/root', { recursive: true });
      execFileSync('mount', ['-t', 'ext4', part, '/mnt/root']);
      try {
        mkdirSync('/mnt/root/etc/cloud/cloud.cfg.d', { recursive: true });
        writeFileSync(
          '/mnt/root/etc/cloud/cloud.cfg.d/99-metalplane.cfg',
          `# written by the metalplane agent for instance ${instanceId}\ndatasource_list: [ NoCloud ]\ndatasource:\n  NoCloud:\n    seedfrom: ${seedfrom}\n`,
        );
      } finally {
        execFileSync('umount', ['/mnt/root']);
      }
    },
    reboot() {
      execFileSync('sync');
      execFileSync('reboot', ['-f']);
    },
    agentState: (state, action) => logger.info({ state, action }, 'agent state'),
  };
  const exit = await runAgent(host, params, new AbortController().signal);
  logger.info({ exit }, 'agent finished');
}

function getStream(url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    mod
      .get(url, (res) => (res.statusCode === 200 ? resolve(res) : (res.resume(), reject(new Error(`GET ${url}: HTTP ${res.statusCode}`)))))
      .on('error', reject);
  });
}

/** The AgentHost request: HTTPS trusting only the pinned CA, answering a fetch Response. */
function httpsRequest(
  agent: https.Agent,
  url: string,
  init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; signal: AbortSignal; timeoutMs?: number },
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method ?? 'GET', headers: init.headers, agent, signal: init.signal, timeout: init.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        const status = res.statusCode ?? 500;
        resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers }));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

if (process.argv[1]?.endsWith('agent-main.js')) {
  main().catch((err: unknown) => {
    process.stdout.write(`agent error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
