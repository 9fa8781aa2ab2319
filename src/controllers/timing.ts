// Hardware time for the provisioning controllers. Timeouts and cool-downs are written in real-world seconds
// (a server takes minutes to POST); `scale` speeds them up as much as the simulated datacenter speeds its
// machines up (`--sim-speed`), so a hung agent is noticed after the same *simulated* time. A floor keeps
// timeouts above what a busy control plane itself may take.
export interface Timing {
  /** How many times faster than the real world the machines are (1 for real racks). */
  readonly scale: number;
  /** A timeout of `realSeconds`, in ms. */
  timeoutMs(realSeconds: number): number;
  /** A delay (cool-down, poll interval) of `realSeconds`, in ms. */
  delayMs(realSeconds: number): number;
}

/**
 * No timeout is shorter than this: at `--sim-speed max` a busy control plane with a thousand machines in
 * flight may take seconds per step, and that must not read as a hung machine.
 */
export const DefaultTimeoutFloorMs = 15_000;

export function createTiming(scale = 1, floorMs = DefaultTimeoutFloorMs): Timing {
  if (!(scale > 0)) throw new Error(`timing: scale must be positive, not ${scale}`);
  return {
    scale,
    timeoutMs: (s) => Math.max(Math.round((s * 1000) / scale), floorMs),
    delayMs: (s) => Math.max(Math.round((s * 1000) / scale), 1),
  };
}
