// A TCP proxy in front of a test PostgreSQL that breaks connections at chosen points of the wire protocol, for
// the faults a restart cannot aim: a COMMIT that reached the server but whose answer never came back, and one
// that never reached it. It reads the frontend's messages (the untyped startup/SSLRequest first, then
// type byte + int32 length), so it knows when a simple-query `COMMIT` goes by. Loopback only.

import { createServer, connect, type Server, type Socket } from 'node:net';

export type CommitFault =
  /** Forward the COMMIT, let the server answer (so it committed), drop the answer and cut the connection. */
  | 'answer-lost'
  /** Cut the connection instead of forwarding the COMMIT (the server rolls the transaction back). */
  | 'never-sent';

export interface FaultProxy {
  port: number;
  /** `url` (a postgres:// URL of the target) with the proxy's port. */
  via(url: string): string;
  /** Applies `fault` to the next COMMIT on any connection; resolves once it was applied. */
  breakNextCommit(fault: CommitFault): Promise<void>;
  close(): Promise<void>;
}

const COMMIT = Buffer.from('COMMIT\0');

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  let armed: { fault: CommitFault; done: () => void } | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    // After an 'answer-lost' COMMIT went up: the next bytes from the server are its answer, never delivered.
    let swallowAnswer: (() => void) | undefined;
    upstream.on('data', (d: Buffer) => {
      if (swallowAnswer) {
        const done = swallowAnswer;
        swallowAnswer = undefined;
        cut();
        done();
        return;
      }
      client.write(d);
    });
    let buf = Buffer.alloc(0);
    let untyped = 1; // the startup message (or an SSLRequest, which is followed by the startup message)
    client.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (untyped > 0) {
          if (buf.length < 4) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const msg = buf.subarray(0, len);
          buf = buf.subarray(len);
          // SSLRequest / GSSENCRequest: the real startup message follows.
          if (len === 8 && [80877103, 80877104].includes(msg.readInt32BE(4))) untyped++;
          untyped--;
          upstream.write(msg);
          continue;
        }
        if (buf.length < 5) return;
        const len = buf.readInt32BE(1) + 1;
        if (buf.length < len) return;
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        // A query that commits: a plain COMMIT, or the store's write query, which ends with one.
        const isCommit = msg[0] === 0x51 /* Q */ && msg.length >= 5 + COMMIT.length && msg.subarray(msg.length - COMMIT.length).equals(COMMIT);
        if (isCommit && armed) {
          const { fault, done } = armed;
          armed = undefined;
          if (fault === 'never-sent') {
            cut();
            done();
            return;
          }
          swallowAnswer = done;
        }
        upstream.write(msg);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    via: (url) => {
      const u = new URL(url);
      u.port = String(port);
      return u.toString();
    },
    breakNextCommit: (fault) => new Promise<void>((resolve) => (armed = { fault, done: resolve })),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
