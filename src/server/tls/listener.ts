// One port, both protocols: every accepted connection is classified by its first byte. 0x16 is a TLS handshake
// record, so the socket goes to an https.Server; anything else is plain HTTP/1.1 and goes to the http.Server.
// Both run the same request handler; `req.socket.encrypted === true` tells them apart, and
// `req.socket.remoteAddress` is the real peer in both cases.
//
// The listening object is itself the plain http.Server (so Fastify's `serverFactory` accepts it as is); the
// https.Server never listens and only receives sockets handed over by it.

import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Only these two are used, so a CertificateBundle from ensureCertificates can be passed as is. */
export interface TlsMaterial {
  /** PEM certificate (chain allowed) */
  cert: string;
  /** PEM private key */
  key: string;
}

export interface PolyglotOptions {
  /**
   * How long close() lets requests in flight finish before destroying their sockets. Watch streams never finish
   * on their own, so this bounds shutdown. Default 1000 ms.
   */
  closeGraceMs?: number;
  /** Time for the request head (and for a new connection's first byte). Default 60 s. */
  headersTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open. Default 65 s. */
  keepAliveTimeoutMs?: number;
  /**
   * Time to receive a whole request, head and body (0: no limit, the default). Only the request: a watch or a
   * long poll is a long *response* to a request received long before, and is not cut.
   */
  requestTimeoutMs?: number;
  /** Connections one peer address may hold open at once; more are closed as they arrive (default: no limit). */
  maxConnectionsPerPeer?: number;
  /** Peers the per-peer cap does not apply to (default: none). */
  isExemptPeer?: (address: string) => boolean;
  /** Told about every connection closed for the per-peer cap. */
  onConnectionRefused?: (peer: string, open: number, limit: number) => void;
}

/** The address a peer is counted under: `::ffff:10.0.0.1` (IPv4 on a dual-stack socket) is `10.0.0.1`. */
export function peerKey(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

const TLS_HANDSHAKE_RECORD = 0x16;

interface Timeouts {
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  requestTimeoutMs: number;
}

/** Timeouts chosen for long-lived streams: no socket idle timeout; deadlines for the head and, if set, the request. */
function applyTimeouts(server: http.Server | https.Server, opts: Timeouts): void {
  // requestTimeout bounds receiving the whole request (a slow body); Node stops counting once the request is in.
  server.requestTimeout = opts.requestTimeoutMs;
  server.headersTimeout = opts.headersTimeoutMs;
  server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  // No socket inactivity timeout: a watch may be silent for minutes between events.
  server.timeout = 0;
}

/**
 * The listening server. It is an http.Server whose 'connection' handling first peeks at one byte, so anything
 * that drives an http.Server (Fastify, `listen`, `close`, `address`, `closeIdleConnections`) drives both protocols.
 */
export class PolyglotServer extends http.Server {
  readonly httpsServer: https.Server;
  readonly closeGraceMs: number;
  private readonly headersTimeoutMs: number;
  /** accepted sockets, until they close */
  private readonly sockets = new Set<net.Socket>();
  /** accepted sockets that have not sent their first byte yet */
  private readonly undecided = new Set<net.Socket>();
  private readonly plainConnectionListener: (socket: net.Socket) => void;
  /** open connections per peer (peerKey), for peers the cap applies to */
  private readonly perPeer = new Map<string, number>();
  private readonly maxConnectionsPerPeer: number;
  private readonly isExemptPeer: (address: string) => boolean;
  private readonly onConnectionRefused: PolyglotOptions['onConnectionRefused'];
  private closing = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(handler: RequestHandler, tls: TlsMaterial, opts: PolyglotOptions = {}) {
    const timeouts: Timeouts = {
      headersTimeoutMs: opts.headersTimeoutMs ?? 60_000,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 65_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 0,
    };
    // Node checks the head and request deadlines on this interval (default 30 s): check often enough that a
    // deadline means about what it says.
    const deadlines = [timeouts.headersTimeoutMs, timeouts.requestTimeoutMs].filter((t) => t > 0);
    const connectionsCheckingInterval = Math.max(100, Math.min(30_000, Math.floor(Math.min(...deadlines) / 4)));
    // TCP keep-alive probes notice peers that vanished under a long watch.
    super({ keepAlive: true, keepAliveInitialDelay: 60_000, noDelay: true, connectionsCheckingInterval });
    this.maxConnectionsPerPeer = opts.maxConnectionsPerPeer ?? Infinity;
    this.isExemptPeer = opts.isExemptPeer ?? (() => false);
    this.onConnectionRefused = opts.onConnectionRefused;
    this.closeGraceMs = opts.closeGraceMs ?? 1000;
    this.headersTimeoutMs = timeouts.headersTimeoutMs;

    const wrapped: RequestHandler = (req, res) => {
      // While draining, tell keep-alive clients not to reuse the connection.
      if (this.closing) res.shouldKeepAlive = false;
      handler(req, res);
    };
    this.on('request', wrapped);
    // Deliberately only cert and key: a bundle's `ca` would make OpenSSL send the root along with the chain.
    this.httpsServer = https.createServer({ cert: tls.cert, key: tls.key, connectionsCheckingInterval }, wrapped);
    applyTimeouts(this, timeouts);
    applyTimeouts(this.httpsServer, timeouts);

    // http.Server registered its own connection listener in its constructor; take it over so every socket is
    // classified first, and call it ourselves for plain HTTP.
    const [listener] = this.listeners('connection') as Array<(socket: net.Socket) => void>;
    if (listener === undefined) throw new Error('http.Server has no connection listener to take over');
    this.plainConnectionListener = listener;
    this.removeListener('connection', listener);
    this.on('connection', (socket: net.Socket) => this.classify(socket));

    // The https.Server never listens, so it never runs the 'listening' hook that starts its connection tracking
    // (needed for headersTimeout and closeIdleConnections). Start it when the shared port starts listening.
    this.on('listening', () => {
      this.closing = false;
      this.httpsServer.emit('listening');
    });
    // Client errors and upgrades (websockets, kubectl exec) on either protocol reach whoever handles them on
    // the listening server (Fastify handles 'clientError'); unhandled, the socket is dropped as Node would.
    for (const event of ['clientError', 'upgrade'] as const) {
      this.httpsServer.on(event, (...args: unknown[]) => {
        if (this.listenerCount(event) > 0) this.emit(event, ...args);
        else (args[1] as net.Socket).destroy(); // (err, socket) and (req, socket, head)
      });
    }
  }

  private classify(socket: net.Socket): void {
    if (!this.admit(socket)) return;
    this.sockets.add(socket);
    this.undecided.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.undecided.delete(socket);
    });
    if (this.closing) {
      socket.destroy();
      return;
    }
    // Until the socket is handed over, errors and a peer hanging up without a byte just end it.
    const drop = (): void => {
      socket.destroy();
    };
    // A peer that connects and says nothing is dropped after the headers deadline.
    const timer = setTimeout(drop, this.headersTimeoutMs);
    timer.unref();
    socket.on('error', drop);
    socket.once('end', drop);
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.removeListener('error', drop);
      socket.removeListener('end', drop);
      this.undecided.delete(socket);
      if (chunk[0] === TLS_HANDSHAKE_RECORD) {
        // TLSSocket reads what is already buffered on the raw socket before it reads the wire.
        socket.pause();
        socket.unshift(chunk);
        // The TLSSocket inherits this. http.Server sockets allow half-open, but a TLS peer that hangs up
        // mid-handshake must end the socket, as it does under a plain https.Server.
        socket.allowHalfOpen = false;
        this.httpsServer.emit('connection', socket);
      } else {
        // The HTTP parser consumes the socket's handle directly once attached, so the bytes we took must be fed
        // to it now, before any later bytes can arrive: the same tick, through its 'data' listener.
        this.plainConnectionListener.call(this, socket);
        socket.emit('data', chunk);
      }
    });
  }

  /** Counts the socket against its peer's cap; closes it (false) when the peer already holds as many as allowed. */
  private admit(socket: net.Socket): boolean {
    if (this.maxConnectionsPerPeer === Infinity) return true;
    const peer = peerKey(socket.remoteAddress);
    if (this.isExemptPeer(peer)) return true;
    const open = this.perPeer.get(peer) ?? 0;
    if (open >= this.maxConnectionsPerPeer) {
      socket.destroy();
      this.onConnectionRefused?.(peer, open, this.maxConnectionsPerPeer);
      return false;
    }
    this.perPeer.set(peer, open + 1);
    socket.once('close', () => {
      const n = (this.perPeer.get(peer) ?? 1) - 1;
      if (n <= 0) this.perPeer.delete(peer);
      else this.perPeer.set(peer, n);
    });
    return true;
  }

  /** Open connections of one peer address (counted only for peers the cap applies to). */
  connectionsOf(address: string): number {
    return this.perPeer.get(peerKey(address)) ?? 0;
  }

  override closeIdleConnections(): void {
    super.closeIdleConnections();
    this.httpsServer.closeIdleConnections();
    for (const socket of this.undecided) socket.destroy();
  }

  override closeAllConnections(): void {
    super.closeAllConnections();
    this.httpsServer.closeAllConnections();
    // TLS handshakes in progress and anything not yet classified are only known here.
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * Stop accepting, close idle connections now, and destroy whatever is still open (watch streams, slow
   * requests) after closeGraceMs. The callback runs when every connection is gone.
   */
  override close(callback?: (err?: Error) => void): this {
    if (!this.closing) {
      this.closing = true;
      // The https.Server is not listening; close() still stops its connection checker and reaps idle sockets.
      this.httpsServer.close(() => {});
      if (this.sockets.size > 0) {
        // Not unref'd: shutdown is bounded by it, and whoever awaits close() needs the callback.
        this.graceTimer = setTimeout(() => this.closeAllConnections(), this.closeGraceMs);
      }
      this.once('close', () => clearTimeout(this.graceTimer));
    }
    return super.close(callback);
  }
}

export interface PolyglotServerHandle {
  /** the listening server (the plain http.Server, classifying every connection) */
  server: PolyglotServer;
  /** same object as `server`: plain HTTP is served by the listening server itself */
  httpServer: http.Server;
  /** receives the TLS connections; never listens */
  httpsServer: https.Server;
  /** stop listening and end every connection (after the grace period); resolves when all are gone */
  close(): Promise<void>;
}

export function createPolyglotServer(
  handler: RequestHandler,
  tls: TlsMaterial,
  opts: PolyglotOptions = {},
): PolyglotServerHandle {
  const server = new PolyglotServer(handler, tls, opts);
  return {
    server,
    httpServer: server,
    httpsServer: server.httpsServer,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => {
          if (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING') reject(err);
          else resolve();
        });
      }),
  };
}

/**
 * A Fastify `serverFactory` serving both protocols on the listen port:
 *
 *   const app = Fastify({ serverFactory: fastifyServerFactory({ cert, key }) });
 *   await app.listen({ host, port });   // TLS and plain HTTP on the same port
 *   await app.close();                  // closes idle sockets, then the rest after closeGraceMs
 *
 * Fastify ignores its own http/https/timeout options when a serverFactory is given; the timeouts here apply.
 */
export function fastifyServerFactory(
  tls: TlsMaterial,
  opts: PolyglotOptions = {},
): (handler: RequestHandler) => PolyglotServer {
  return (handler) => new PolyglotServer(handler, tls, opts);
}
