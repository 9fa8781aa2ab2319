// ipam.plan.10k: what planning one device's addresses costs with 10 000 devices' claims in the index (30 000
// claims: a public IPv4, a private IPv4 and an IPv6 assignment per device, the last two in the blocks of 50
// projects), against the same at 100 devices, in the same run. Flat is the goal: before the claim index each placement re-read,
// parsed and sorted every claim, 2.2 ms per device at 1000 devices and 32 ms at 10 000. Also measured: the
// plan after deleting one claim in nine (removals split the runs they were in).
import { ClaimIndex, planClaims, planDeviceAddresses, type Claim, type Pool } from '../src/controllers/ipam/allocate.js';
import type { BenchOptions, BenchResult } from './types.js';

const pools: Pool[] = [
  { name: 'da-public-v4', metro: 'da', family: 4, public: true, cidr: '147.0.0.0/12', assignPrefix: 31 },
  { name: 'da-private-v4', metro: 'da', family: 4, public: false, cidr: '10.0.0.0/8', assignPrefix: 31, projectPrefix: 25 },
  { name: 'da-v6', metro: 'da', family: 6, public: true, cidr: '2604:1380::/32', assignPrefix: 127, projectPrefix: 56 },
];
const want = [
  { family: 4 as const, public: true },
  { family: 4 as const, public: false },
  { family: 6 as const, public: true },
];

/** Fills an index with `devices` devices' claims, then times planning (without claiming) for 50 projects. */
function msPerPlan(devices: number, samples: number): { ms: number; afterDeletes: number; claims: number } {
  const index = new ClaimIndex();
  const all: Claim[] = [];
  for (let i = 0; i < devices; i++) {
    const plan = planDeviceAddresses({ project: `p${i % 50}`, metro: 'da', want, pools, claims: index });
    for (const c of planClaims(plan)) {
      index.set(c);
      all.push(c);
    }
  }
  const time = (): number => {
    const t0 = performance.now();
    for (let k = 0; k < samples; k++) planDeviceAddresses({ project: `p${k % 50}`, metro: 'da', want, pools, claims: index });
    return (performance.now() - t0) / samples;
  };
  time(); // warm-up
  const ms = time();
  for (let k = 0; k < all.length; k += 9) index.delete(all[k]!.key);
  if (index.size !== all.length - Math.ceil(all.length / 9)) throw new Error(`ipam.plan: ${index.size} claims left in the index`);
  return { ms, afterDeletes: time(), claims: all.length };
}

export async function benchIpam(opts: BenchOptions): Promise<BenchResult[]> {
  const devices = opts.quick ? 3000 : 10_000;
  const samples = 500;
  msPerPlan(100, samples); // the JIT's turn
  const large = msPerPlan(devices, samples);
  const small = msPerPlan(100, samples);
  const round = (n: number): number => Math.round(n * 1000) / 1000;
  return [
    {
      name: `ipam.plan.${devices >= 10_000 ? `${devices / 1000}k` : devices}`,
      value: round(large.ms),
      unit: 'ms per device',
      baseline: 'the same at 100 devices',
      baselineValue: round(small.ms),
      ratio: round(large.ms / small.ms),
      target: 'flat (≤ 2×)',
      note: `${large.claims} claims; ${round(large.afterDeletes)} ms per device after deleting one claim in nine`,
    },
  ];
}
