// The boot each machine is in, as metalplane started it: one record per machine, written when the machine's
// iPXE fetches its script during a power-on into PXE that metalplane itself made (boot.ts), read by the agent
// API on every call. It is what makes an agent token worth something only for the boot it was issued for, while
// that boot is the machine's current one, and only from the address that started it (docs/provisioning-protocol.md,
// "Threat model"). Kept in the store under a key of its own (not in Hardware status, which several controllers
// rewrite), so it survives a restart and is shared by every replica.
import { isAlreadyExists, isConflict } from '../lib/errors.js';
import type { Store } from '../store/types.js';
import { newBootId } from './tokens.js';

const Prefix = '/metalplane/provisioning/boots/';

export interface BootRecord {
  bootId: string;
  /** The Hardware's uid: a machine enrolled again under the same name starts from nothing. */
  hardwareUid: string;
  /** The power-on this boot answers (see expectedPowerOn in boot.ts): at most one boot per power-on. */
  powerOn: string;
  /** The workflow that powered the machine on. */
  workflow: { namespace: string; name: string };
  /** The address that fetched the iPXE script; every later request of this boot must come from it. */
  peer: string;
  /** Unix seconds. */
  issuedAt: number;
  /** A second address asked for the same power-on: one of the two is not the machine. The boot is revoked. */
  contested?: { peer: string; at: number };
}

/** What the machine asks for: a boot for this power-on, from this address. */
export interface BootRequest {
  hardwareUid: string;
  powerOn: string;
  workflow: { namespace: string; name: string };
  peer: string;
  /** Unix seconds. */
  now: number;
}

export type BootOutcome =
  /** A new boot was started (write `record`), or the same one is fetched again (a retried iPXE fetch). */
  | { kind: 'new' | 'again'; record: BootRecord }
  /** Another address already started this power-on's boot (or it was revoked before): no token. */
  | { kind: 'contested'; record: BootRecord; first: boolean };

/** The decision as data: the boot to answer with, given the record stored now. */
export function nextBoot(existing: BootRecord | undefined, want: BootRequest, newId: () => string = newBootId): BootOutcome {
  if (existing && existing.hardwareUid === want.hardwareUid && existing.powerOn === want.powerOn) {
    if (existing.contested) return { kind: 'contested', record: existing, first: false };
    if (existing.peer === want.peer) return { kind: 'again', record: existing };
    return { kind: 'contested', record: { ...existing, contested: { peer: want.peer, at: want.now } }, first: true };
  }
  return {
    kind: 'new',
    record: { bootId: newId(), hardwareUid: want.hardwareUid, powerOn: want.powerOn, workflow: want.workflow, peer: want.peer, issuedAt: want.now },
  };
}

export class BootRecords {
  constructor(private readonly store: Store) {}

  async get(hardware: string): Promise<BootRecord | undefined> {
    const kv = await this.store.get(Prefix + hardware);
    return kv ? (JSON.parse(kv.value) as BootRecord) : undefined;
  }

  /** Every machine's current boot, by hardware name (the metadata service finds a caller's machine by address). */
  async list(): Promise<Array<{ hardware: string; record: BootRecord }>> {
    const out: Array<{ hardware: string; record: BootRecord }> = [];
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.store.list(Prefix, { limit: 500, ...(startAfter ? { startAfter } : {}) });
      for (const kv of page.items) out.push({ hardware: kv.key.slice(Prefix.length), record: JSON.parse(kv.value) as BootRecord });
      if (!page.more || page.items.length === 0) return out;
      startAfter = page.items[page.items.length - 1]!.key;
    }
  }

  /**
   * Starts the boot of a power-on, or answers the one already started. Concurrent fetches are decided by the
   * store: the loser of a write race reads again and sees the winner's record.
   */
  async begin(hardware: string, want: BootRequest): Promise<BootOutcome> {
    for (let attempt = 0; ; attempt++) {
      const kv = await this.store.get(Prefix + hardware);
      const existing = kv ? (JSON.parse(kv.value) as BootRecord) : undefined;
      const out = nextBoot(existing, want);
      if (out.kind === 'again' || (out.kind === 'contested' && !out.first)) return out;
      try {
        if (kv) await this.store.update(kv.key, JSON.stringify(out.record), kv.modRevision);
        else await this.store.create(Prefix + hardware, JSON.stringify(out.record));
        return out;
      } catch (e) {
        if (attempt >= 5 || !(isConflict(e) || isAlreadyExists(e))) throw e;
      }
    }
  }
}
