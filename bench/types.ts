// One benchmark result row, as written to bench/results/latest.json.
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** What the value is compared against, measured in the same run (absent for absolute targets). */
  baseline?: string;
  baselineValue?: number;
  /** value / baselineValue for throughputs (higher is better); absent for absolute targets. */
  ratio?: number;
  /** The target from the issue, for the markdown table. */
  target?: string;
  note?: string;
}

export interface BenchOptions {
  /** --quick: smaller counts so the whole run stays under 3 minutes on 2 cores. */
  quick: boolean;
}
