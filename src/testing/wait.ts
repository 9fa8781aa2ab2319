// Waiting in tests without sleeping: let pending promises and I/O callbacks run, or wait for a condition while a
// fake clock moves. Nothing here reads the wall clock, so a slow machine makes a test slower, never flaky.
import type { FakeClock } from '../lib/clock.js';

/**
 * Lets pending microtasks and I/O callbacks run for `rounds` turns of the event loop: watch deliveries, awaited
 * client calls, and the store's group commit (which flushes on the next turn).
 */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Waits until `cond` holds, letting promises settle between checks and, if a FakeClock is given, moving it by
 * `stepMs` each round (so backoffs and requeues fire). Fails with `message` after `rounds` rounds. `yieldMs`:
 * each round also gives this many real milliseconds to I/O of another process (a PostgreSQL round trip), which
 * turns of this event loop do not hurry: on a loaded machine 4000 turns can pass before its reply arrives.
 */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  opts: { clock?: FakeClock; stepMs?: number; rounds?: number; message?: string; yieldMs?: number } = {},
): Promise<void> {
  const rounds = opts.rounds ?? 400;
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await settle(1);
    if (opts.yieldMs) await new Promise<void>((r) => setTimeout(r, opts.yieldMs));
    if (opts.clock) opts.clock.advance(opts.stepMs ?? 10);
  }
  if (await cond()) return;
  throw new Error(`condition not met: ${opts.message ?? cond.toString()}`);
}
