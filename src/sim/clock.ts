// Simulated time for the simulated datacenter. Hardware takes real-world time (a server POSTs in ~45 s, an
// image streams at disk speed); `--sim-speed` divides those durations so a laptop demo provisions in seconds,
// and 'max' removes them (the next event-loop turn). Every duration of the simulation is listed here, once.

export type SimSpeed = number | 'max';

/**
 * How long things take on real hardware (seconds, or MB/s for the image). At speed 10 a warm-pool provision
 * (wipe 2 disks 16 s + stream 1.5 GB 12 s + datasource 1 s + firmware 45 s + OS 25 s + cloud-init 5 s ≈ 104 s)
 * takes ~10 s; a cold one (firmware + PXE/agent boot + inventory first, ≈ 171 s) ~17 s.
 */
export const SIM_DURATIONS = {
  /** POST and firmware initialisation, from power-on to the boot device being chosen. */
  firmwareSeconds: 45,
  /** DHCP, iPXE, kernel + initramfs download, agent start. */
  agentBootSeconds: 20,
  /** Installed OS boot, to the point cloud-init starts. */
  osBootSeconds: 25,
  /** cloud-init's own work before it fetches the datasource. */
  cloudInitSeconds: 5,
  /** The agent's `inventory` action. */
  inventorySeconds: 2,
  /** The agent's `wipe-disks` action, per disk. */
  wipePerDiskSeconds: 8,
  /** `stream-image` bandwidth. */
  imageMBPerSecond: 125,
  /** The agent's `write-datasource` action. */
  writeDatasourceSeconds: 1,
  /** Between PXE attempts when the iPXE script cannot be fetched (firmware retries forever). */
  pxeRetrySeconds: 5,
} as const;

/**
 * The least real time between two retries of a failing request, whatever the speed: at 'max' a machine
 * whose server is down would otherwise retry on every event-loop turn.
 */
export const MIN_RETRY_MS = 50;

/** Real milliseconds that `seconds` of simulated hardware time take at `speed` (0 at 'max'). */
export function simMs(speed: SimSpeed, seconds: number): number {
  if (speed === 'max') return 0;
  return Math.max(0, (seconds * 1000) / speed);
}

/** An Error for a wait or request cut short by its AbortSignal. */
export class SimAbortError extends Error {
  constructor(message = 'aborted') {
    super(message);
    this.name = 'AbortError';
  }
}

/** True for errors that only say "aborted" (ours, DOMException AbortError, fetch's). */
export function isAbortError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

/**
 * Resolves after `seconds` of simulated time (seconds*1000/speed real ms; at 'max' on the next
 * setImmediate turn), or after `minRealMs` if that is longer. Rejects with SimAbortError when `signal` aborts.
 */
export function simDelay(speed: SimSpeed, seconds: number, signal?: AbortSignal, minRealMs = 0): Promise<void> {
  return realDelay(Math.max(simMs(speed, seconds), minRealMs), signal);
}

/** Waits `ms` real milliseconds (0: the next setImmediate turn); rejects with SimAbortError on abort. */
export function realDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new SimAbortError());
      return;
    }
    const onAbort = (): void => {
      if (ms > 0) clearTimeout(timer as NodeJS.Timeout);
      else clearImmediate(timer as NodeJS.Immediate);
      reject(new SimAbortError());
    };
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const timer: NodeJS.Timeout | NodeJS.Immediate = ms > 0 ? setTimeout(done, ms) : setImmediate(done);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
