// Credentials for machines: an agent token per boot (handed out in the iPXE script) and an instance token per
// device (in the cloud-init seed URL). Both are HMAC-signed, so nothing is written per boot, and they survive a
// restart: the signing key lives in the store. A token names exactly one machine and boot, or one device, and
// the endpoints show that one only its own data.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/types.js';

const KeyPath = '/metalplane/provisioning-signing-key';

export type TokenClaims = { kind: 'agent'; hardware: string; bootId: string } | { kind: 'instance'; namespace: string; device: string; uid: string };

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

  /** The claims of a valid token, or undefined (bad format or signature). */
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
