// User state (Equinix Metal's `user_state_url`): a machine's own scripts tell how their work goes with
// `POST {"state":"running|succeeded|failed","code":1000,"message":"…"}`, and each post becomes an Event on the
// machine's Device (kubectl get events, the Metal API's device events). Parsing is pure; posts are bounded per
// device by a token bucket so one machine cannot flood the store with events.

export const UserStates = ['running', 'succeeded', 'failed'] as const;
export type UserState = (typeof UserStates)[number];

/** The largest body accepted: a state, a code and a message of at most MaxMessageLength characters fit. */
export const MaxUserStateBodyBytes = 4096;
export const MaxMessageLength = 1024;

export interface UserStateReport {
  state: UserState;
  code?: number;
  message?: string;
}

/** A refusal carries its status: 400 for a body that is not a JSON object, 422 for a field that is wrong. */
export type UserStateParse = { ok: true; report: UserStateReport } | { ok: false; code: 400 | 422; message: string };

const Example = '{"state":"succeeded","code":1000,"message":"app installed"}';

/** The body as sent (any content type: `curl -d` sends form-encoded headers with a JSON body). */
export function parseUserState(body: Buffer | string | undefined): UserStateParse {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : (body ?? '');
  if (!text.trim()) return { ok: false, code: 400, message: `the body is empty; send a JSON object like ${Example}` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 400, message: `the body is not JSON; send a JSON object like ${Example}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, code: 400, message: `the body must be a JSON object like ${Example}` };
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => k !== 'state' && k !== 'code' && k !== 'message');
  if (unknown.length) return { ok: false, code: 422, message: `unknown field ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}: the fields are state, code and message` };
  if (typeof o.state !== 'string' || !(UserStates as readonly string[]).includes(o.state)) {
    return { ok: false, code: 422, message: `state: ${JSON.stringify(typeof o.state === 'string' ? o.state.slice(0, 40) : o.state ?? null)} is not a state; it is one of ${UserStates.join(', ')}` };
  }
  if (o.code !== undefined && !(typeof o.code === 'number' && Number.isInteger(o.code) && o.code >= 0 && o.code <= 2_147_483_647)) {
    return { ok: false, code: 422, message: 'code: must be a non-negative integer, e.g. 1000' };
  }
  if (o.message !== undefined && typeof o.message !== 'string') return { ok: false, code: 422, message: 'message: must be a string' };
  if (typeof o.message === 'string' && o.message.length > MaxMessageLength) {
    return { ok: false, code: 422, message: `message: ${o.message.length} characters; at most ${MaxMessageLength}` };
  }
  return { ok: true, report: { state: o.state as UserState, ...(o.code !== undefined ? { code: o.code as number } : {}), ...(o.message !== undefined ? { message: o.message as string } : {}) } };
}

/** The Event a report becomes: a CamelCase reason per state, Warning for a failure. */
export function userStateEvent(r: UserStateReport): { type: 'Normal' | 'Warning'; reason: string; message: string } {
  const reason = `UserState${r.state[0]!.toUpperCase()}${r.state.slice(1)}`;
  const head = `the machine reports user state ${r.state}${r.code !== undefined ? ` (code ${r.code})` : ''}`;
  return { type: r.state === 'failed' ? 'Warning' : 'Normal', reason, message: r.message ? `${head}: ${r.message}` : head };
}

/**
 * Posts a device may make: a burst, then one per refill interval. Kept per replica in memory (a restart gives
 * every machine a fresh burst, which is harmless); the least recently seen devices are forgotten beyond `max`.
 */
export class UserStateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly now: () => number,
    private readonly burst = 30,
    private readonly refillMs = 10_000,
    private readonly max = 10_000,
  ) {}

  /** Takes one post for `key`; false (and seconds to wait) when it has none left. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    const gained = Math.floor((t - b.at) / this.refillMs);
    if (gained > 0) {
      b.tokens = Math.min(this.burst, b.tokens + gained);
      b.at += gained * this.refillMs;
    }
    if (b.tokens >= this.burst) b.at = t;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    while (this.buckets.size > this.max) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens <= 0) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((b.at + this.refillMs - t) / 1000)) };
    b.tokens--;
    return { ok: true };
  }
}
