// `npm run bench [-- --quick]`: runs every benchmark and writes bench/results/latest.json and latest.md.
// Ratios are always against a baseline measured in the same run; misses are reported, never hidden.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchStore } from './store.js';
import { benchApi } from './api.js';
import { benchEtcd } from './etcd.js';
import { benchProvision } from './provision.js';
import { benchMetal } from './metal.js';
import { benchBackup } from './backup.js';
import { benchScale } from './scale.js';
import { benchIpam } from './ipam.js';
import type { BenchResult } from './types.js';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const outDir = join(fileURLToPath(new URL('../..', import.meta.url)), 'bench', 'results');

const suites: Array<[string, () => Promise<BenchResult[]>]> = [
  ['store', () => benchStore({ quick })],
  ['api', () => benchApi({ quick })],
  ['etcd', () => benchEtcd({ quick })],
  ['provision', () => benchProvision({ quick })],
  ['ipam', () => benchIpam({ quick })],
  ['metal', () => benchMetal({ quick })],
  ['backup', () => benchBackup({ quick })],
  ['scale', () => benchScale({ quick })],
];

const results: BenchResult[] = [];
const started = Date.now();
for (const [name, run] of suites) {
  if (only && only !== name) continue;
  process.stderr.write(`bench: ${name}…\n`);
  const r = await run();
  for (const row of r) process.stderr.write(`  ${row.name}: ${row.value} ${row.unit}${row.ratio !== undefined ? ` (${row.ratio}× ${row.baseline})` : ''}\n`);
  results.push(...r);
}

mkdirSync(outDir, { recursive: true });
const doc = { quick, node: process.version, cpus: (await import('node:os')).cpus().length, seconds: Math.round((Date.now() - started) / 1000), results };
writeFileSync(join(outDir, 'latest.json'), JSON.stringify(doc, null, 2) + '\n');
const md = [
  `| benchmark | value | baseline (same run) | ratio | target | note |`,
  `|---|---|---|---|---|---|`,
  ...results.map((r) => `| ${r.name} | ${r.value} ${r.unit} | ${r.baseline ? `${r.baselineValue} ${r.unit} (${r.baseline})` : '—'} | ${r.ratio !== undefined ? r.ratio + '×' : '—'} | ${r.target ?? ''} | ${r.note ?? ''} |`),
].join('\n');
writeFileSync(join(outDir, 'latest.md'), md + '\n');
process.stdout.write(md + '\n');
