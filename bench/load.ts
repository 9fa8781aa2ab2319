// A small closed-loop HTTP load generator in the bench's own process: `concurrency` keep-alive connections each
// sending requests back to back until `count` requests are done or `maxMs` passes. For the rows that compare two
// metalplane surfaces or time one (list.10k, metal.create, api.create.pg); the ratios against bare Fastify and
// etcd use autocannon in a process of its own (cannon.ts), which costs the server's core far less.
import http from 'node:http';
import https from 'node:https';

export interface LoadTarget {
  url: string;
  ca?: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Body for request i (POST). */
  body?: (i: number) => string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
}

export async function runLoad(t: LoadTarget, count: number, concurrency: number, maxMs = 60_000): Promise<LoadResult> {
  const u = new URL(t.url);
  const isTls = u.protocol === 'https:';
  const agent = isTls ? new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: t.ca }) : new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const lib = isTls ? https : http;
  let next = 0;
  let errors = 0;
  const lat: number[] = [];
  const start = performance.now();
  const deadline = start + maxMs;
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const body = t.body?.(i);
      const t0 = performance.now();
      const req = lib.request(
        {
          agent,
          hostname: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          method: t.method,
          headers: { ...(t.headers ?? {}), ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
        },
        (res) => {
          // A connection reset mid-response is a failed request, not a crash of the load generator.
          res.on('error', () => {
            errors++;
            resolve();
          });
          res.on('data', () => undefined);
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 400) errors++;
            lat.push(performance.now() - t0);
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) await one(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
  return { requests: lat.length, errors, seconds, perSecond: lat.length / seconds, p50ms: pct(0.5), p99ms: pct(0.99) };
}

/**
 * Reads a watch response line by line: `onLine(line, receivedAt)` for each complete JSON line, with the time its
 * chunk arrived (performance.now()), so delivery delays are measured before parsing.
 */
export function onWatchLines(res: http.IncomingMessage, onLine: (line: string, receivedAt: number) => void): void {
  res.on('error', () => undefined); // watch streams are torn down at the end of a run
  res.setEncoding('utf8');
  let buf = '';
  res.on('data', (chunk: string) => {
    const now = performance.now();
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      onLine(line, now);
    }
  });
}

/** Open watches that time the delivery of marked writes (see openDelayWatches). */
export interface DelayWatches {
  /** When each marked write was sent (performance.now()), by its mark: the caller sets it just before sending. */
  sentAt: Map<string, number>;
  /** Every delivery's delay (ms since its write was sent), over all watches. */
  delays: number[];
  /** Waits until `expected` deliveries arrived or `ms` passed, looking every `stepMs`. */
  waitFor(expected: number, ms: number, stepMs: number): Promise<void>;
  close(): void;
}

/**
 * `count` watches of `url` (a watch URL with its query). Each `type` event whose line holds a mark (`mark`'s first
 * group) that `sentAt` knows adds its delivery delay. Resolves once every watch has its response.
 */
export async function openDelayWatches(o: { url: string; token: string; count: number; mark: RegExp; type: 'ADDED' | 'MODIFIED' }): Promise<DelayWatches> {
  const sentAt = new Map<string, number>();
  const delays: number[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.count + 10 });
  const reqs: http.ClientRequest[] = [];
  const prefix = `{"type":"${o.type}"`;
  await new Promise<void>((resolveAll, reject) => {
    let ready = 0;
    for (let w = 0; w < o.count; w++) {
      const req = http.get(o.url, { agent, headers: { authorization: `Bearer ${o.token}` } }, (res) => {
        onWatchLines(res, (line, now) => {
          const m = o.mark.exec(line);
          const t = m ? sentAt.get(m[1]!) : undefined;
          if (t !== undefined && line.startsWith(prefix)) delays.push(now - t);
        });
        if (++ready === o.count) resolveAll();
      });
      req.on('error', reject);
      reqs.push(req);
    }
  });
  return {
    sentAt,
    delays,
    async waitFor(expected, ms, stepMs) {
      const deadline = Date.now() + ms;
      while (delays.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, stepMs));
    },
    close() {
      for (const r of reqs) r.destroy();
      agent.destroy();
    },
  };
}
