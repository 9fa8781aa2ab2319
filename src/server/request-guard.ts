// What a request must show before its body is read. Fastify's onRequest hooks run after routing and before
// the body is parsed, so this is where a caller without a credential is turned away without costing memory:
//
// - The kube API (and /metrics) authenticates every request here, with or without a body; the handlers use the
//   user found here.
// - Any other request with a body must carry the credential of its surface (an agent token for /agent/v1, the
//   instance token in the path for phone-home, an API token otherwise): the surfaces still check it fully, this
//   only decides whether the body is worth reading.
// - The body bytes a peer may have in flight are capped (a 429 with Retry-After, and the connection closed).
//
// Refusals close the connection, so an unread body is never drained or buffered.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { User } from '../apiserver/auth.js';
import { sendStatusError } from '../apiserver/kube-api.js';
import { ApiError } from '../lib/errors.js';
import { peerKey } from './tls/listener.js';
import { lingerAfterResponse } from './linger.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API user, once authenticated (by the guard for the kube API). */
    user?: User;
  }
}

/** How one surface tells whether a caller may send it a body. */
export interface BodyCredential {
  /** for logs */
  name: string;
  /** Whether the request belongs to this surface (its route is known here: onRequest runs after routing). */
  matches: (req: FastifyRequest) => boolean;
  /**
   * Whether the request carries a credential worth reading a body for (a cheap check: no store access).
   * Absent: the surface authenticates in an onRequest hook of its own, which also runs before the body.
   */
  present?: (req: FastifyRequest) => boolean | Promise<boolean>;
  /** The surface's own refusal (its error format). Needed with `present`. */
  refuse?: (req: FastifyRequest, reply: FastifyReply) => FastifyReply;
}

export interface RequestGuardOptions {
  /** Authenticates an API request (bearer token); throws 401. */
  authenticate: (req: FastifyRequest) => Promise<User>;
  /** The user of a request whose credential is already verified, without waiting; undefined: ask `authenticate`. */
  known?: (req: FastifyRequest) => User | undefined;
  /** Whether a path belongs to the kube API, authenticated before anything else happens. */
  isApiPath: (path: string) => boolean;
  /** Surfaces with their own credentials, checked in order; a body for anything else needs an API token. */
  credentials: BodyCredential[];
  /** Body bytes one peer may have in flight at once (requests being received or handled). */
  maxBodyBytesPerPeer: number;
  /** The largest body a request may have (Fastify's bodyLimit): what a chunked body is counted as. */
  bodyLimit: number;
  /** Peers the per-peer byte cap does not apply to. */
  isExemptPeer: (address: string) => boolean;
  /** Told about every request refused for the byte cap. */
  onRefused: (peer: string, reason: string) => void;
}

// Fastify parses no body for these; Node discards whatever a client sends with them.
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE']);

export function announcesBody(req: FastifyRequest): boolean {
  if (BODYLESS.has(req.method)) return false;
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** The bytes a request's body will hold at most. */
function bodyBytes(req: FastifyRequest, limit: number): number {
  const len = Number(req.headers['content-length']);
  return req.headers['transfer-encoding'] === undefined && Number.isFinite(len) && len >= 0 ? Math.min(len, limit) : limit;
}

export function pathOf(url: string): string {
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}

/** Per-peer accounting of body bytes in flight. */
export class PeerBudget {
  private readonly used = new Map<string, number>();
  constructor(private readonly limit: number) {}

  take(peer: string, bytes: number): boolean {
    const now = this.used.get(peer) ?? 0;
    if (now + bytes > this.limit && now > 0) return false;
    this.used.set(peer, now + bytes);
    return true;
  }

  give(peer: string, bytes: number): void {
    const left = (this.used.get(peer) ?? 0) - bytes;
    if (left <= 0) this.used.delete(peer);
    else this.used.set(peer, left);
  }

  inFlight(peer: string): number {
    return this.used.get(peer) ?? 0;
  }
}

/** Ends the connection after this response: the client's body is then read only to be discarded. */
function closing(reply: FastifyReply): FastifyReply {
  lingerAfterResponse(reply.request.raw);
  return reply.header('Connection', 'close');
}

export function installRequestGuard(app: FastifyInstance, opts: RequestGuardOptions): PeerBudget {
  const budget = new PeerBudget(opts.maxBodyBytesPerPeer);
  // `triedKnown`: the caller has asked `known` already (and had no answer).
  const guard = async (req: FastifyRequest, reply: FastifyReply, path: string, hasBody: boolean, triedKnown: boolean): Promise<FastifyReply | undefined> => {
    if (opts.isApiPath(path)) {
      try {
        req.user = (triedKnown ? undefined : opts.known?.(req)) ?? (await opts.authenticate(req));
      } catch (e) {
        if (hasBody) closing(reply);
        await sendStatusError(reply, e);
        return reply;
      }
    } else if (hasBody) {
      const surface = opts.credentials.find((c) => c.matches(req));
      if (surface) {
        if (surface.present && !(await surface.present(req))) {
          closing(reply);
          if (surface.refuse) await surface.refuse(req, reply);
          else await sendStatusError(reply, ApiError.unauthorized(`Unauthorized: this request needs a ${surface.name}`));
          return reply;
        }
      } else {
        try {
          req.user = await opts.authenticate(req);
        } catch (e) {
          await sendStatusError(closing(reply), e);
          return reply;
        }
      }
    }
    if (!hasBody) return;
    const peer = peerKey(req.raw.socket.remoteAddress);
    if (opts.isExemptPeer(peer)) return;
    const bytes = bodyBytes(req, opts.bodyLimit);
    if (!budget.take(peer, bytes)) {
      opts.onRefused(peer, `request bodies in flight would exceed ${opts.maxBodyBytesPerPeer} bytes`);
      const err = new ApiError(429, 'TooManyRequests', `too many request bodies in flight from ${peer}: at most ${opts.maxBodyBytesPerPeer} bytes at once; retry when earlier requests have finished`, { retryAfterSeconds: 1 });
      await sendStatusError(closing(reply).header('Retry-After', '1'), err);
      return reply;
    }
    // Given back when the response is done or the connection is gone, whichever comes first.
    let held = true;
    const release = (): void => {
      if (held) budget.give(peer, bytes);
      held = false;
    };
    reply.raw.once('close', release);
    reply.raw.once('finish', release);
    return undefined;
  };
  // Callback style: a request without a body outside the kube API (probes, boot files, long polls) has nothing
  // to show here and passes without a promise. The others wait for the guard; a refusal has sent its reply,
  // which ends Fastify's hook chain there.
  // So does an API request without a body whose token is already known (most reads): it has nothing to wait for.
  app.addHook('onRequest', (req, reply, done) => {
    const path = pathOf(req.url);
    const hasBody = announcesBody(req);
    if (!hasBody) {
      if (!opts.isApiPath(path)) return done();
      const user = opts.known?.(req);
      if (user) {
        req.user = user;
        return done();
      }
    }
    guard(req, reply, path, hasBody, !hasBody).then(() => done(), done);
  });
  return budget;
}

/**
 * Logs refusals at most once per peer and reason in `everyMs`, with how many were folded in: an attack must not
 * turn into a log flood.
 */
export function throttledRefusalLog(warn: (fields: Record<string, unknown>, msg: string) => void, everyMs = 10_000, now: () => number = Date.now): (peer: string, reason: string) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (peer, reason) => {
    const key = `${peer} ${reason}`;
    const t = now();
    const seen = last.get(key);
    if (seen && t - seen.at < everyMs) {
      seen.suppressed++;
      return;
    }
    if (last.size > 10_000) last.clear();
    last.set(key, { at: t, suppressed: 0 });
    warn({ peer, reason, ...(seen?.suppressed ? { suppressed: seen.suppressed } : {}) }, 'refused a request or connection from one peer');
  };
}
