// Credentials for machines: an agent token per boot (handed out in the iPXE script) and an instance token per
// device (in the cloud-init seed URL). Both are HMAC-signed, and the signing key lives in the store, so they
// survive a restart. A token names exactly one machine and boot, or one device, and the endpoints show that one
// only its own data. An agent token is only half the check: the agent API also requires that its boot is the
// machine's current one (boots.ts) and that the caller is the address the boot was started for.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/types.js';

const KeyPath = '/metalplane/provisioning-signing-key';

/**
 * How long an agent token is valid, seconds. Longer than any one agent action (stream-image may take 30
 * minutes without a call to the server) plus the renewal age below, so an agent that calls in at all never
 * holds an expired token; short enough that a token copied off a wire or a console is soon worthless.
 */
export const AgentTokenLifetimeSeconds = 3600;
/** An agent token older than this is renewed in the answer to any authenticated call (`x-metalplane-token`). */
export const AgentTokenRenewAfterSeconds = 300;
export const RenewedTokenHeader = 'x-metalplane-token';

/** `iat`/`exp`: unix seconds. */
export interface AgentClaims {
  kind: 'agent';
  hardware: string;
  bootId: string;
  iat: number;
  exp: number;
}
export interface InstanceClaims {
  kind: 'instance';
  namespace: string;
  device: string;
  uid: string;
}
export type TokenClaims = AgentClaims | InstanceClaims;

export class TokenSigner {
  private constructor(private readonly key: Buffer) {}

  /** Loads the signing key from the store, making one on first start. */
  static async load(store: Store): Promise<TokenSigner> {
    let kv = await store.get(KeyPath);
    if (!kv) {
      try {
        kv = await store.create(KeyPath, JSON.stringify({ key: randomBytes(32).toString('base64') }));
      } catch {
        kv = await store.get(KeyPath);
      }
    }
    const { key } = JSON.parse(kv!.value) as { key: string };
    return new TokenSigner(Buffer.from(key, 'base64'));
  }

  static forTest(): TokenSigner {
    return new TokenSigner(randomBytes(32));
  }

  sign(claims: TokenClaims): string {
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The agent token of a boot issued at `iat` (unix seconds): the same inputs give the same token. */
  agentToken(hardware: string, bootId: string, iat: number): string {
    return this.sign({ kind: 'agent', hardware, bootId, iat, exp: iat + AgentTokenLifetimeSeconds });
  }

  /** The claims of a valid token, or undefined (bad format or signature). Expiry is the caller's to check. */
  verify(token: string): TokenClaims | undefined {
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const body = token.slice(0, dot);
    const sig = Buffer.from(token.slice(dot + 1));
    const want = Buffer.from(this.mac(body));
    if (sig.length !== want.length || !timingSafeEqual(sig, want)) return undefined;
    try {
      return JSON.parse(Buffer.from(body, 'base64url').toString()) as TokenClaims;
    } catch {
      return undefined;
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

export function newBootId(): string {
  return randomBytes(6).toString('hex');
}

/** The peer address as one string for both stacks (`::ffff:10.0.0.5` is `10.0.0.5`). */
export function normalizePeer(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
