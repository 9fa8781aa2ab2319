// `metalplane chaos`: inject and clear faults in the simulated datacenter, list what is broken, start and stop
// random chaos. It talks to the server's /sim/v1 API with the kubeconfig `metalplane up` wrote (server URL,
// CA, bearer token), so TLS is verified against metalplane's own CA.
// Exit status: 0 success, 1 failure (the API's error is printed), 2 usage error (thrown as commander's
// InvalidArgumentError / CommanderError, which main() maps to 2).
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { FAULT_DESCRIPTIONS, FAULT_TYPES, type FaultType } from '../sim/faults.js';

interface ConnectionOptions {
  server?: string;
  tokenFile?: string;
  kubeconfig?: string;
}

interface Connection {
  server: URL;
  token?: string;
  ca?: string;
}

interface ApiAnswer {
  status: number;
  body: unknown;
}

export function chaosCommand(): Command {
  const chaos = new Command('chaos')
    .description('break simulated machines on purpose: inject and clear faults, or let random chaos do it')
    .addHelpText(
      'after',
      `\nFault types:\n${FAULT_TYPES.map((t) => `  ${t.padEnd(16)} ${FAULT_DESCRIPTIONS[t]}`).join('\n')}\n\n` +
        'Examples:\n' +
        '  metalplane chaos inject da11-r01-s01 nic-down --duration 30s\n' +
        '  metalplane chaos inject da11-r01-s02 slow-boot --factor 20\n' +
        '  metalplane chaos list -o wide\n' +
        '  metalplane chaos random --rate 6 --types agent-hang,nic-down --duration 20s\n' +
        '  metalplane chaos stop\n',
    )
    // Set here because addCommand() does not pass main's settings on: usage errors must reach main() (exit 2).
    .exitOverride();

  withConnection(
    chaos
      .command('inject')
      .description('inject a fault into one machine (it lasts until cleared unless --duration is given)')
      .argument('<machine>', 'the machine name, e.g. da11-r01-s03 (see `metalplane chaos list -o wide` or `kubectl get hardware`)')
      .argument('<fault>', `the fault type: ${FAULT_TYPES.join(', ')}`, parseFaultType)
      .option('--duration <duration>', 'clear it by itself after this long, e.g. 30s, 5m, 1h (default: until cleared)', parseDuration)
      .option('--factor <n>', 'slow-boot only: multiply firmware and boot delays by this (default 10)', parseFactor),
  ).action(async (machine: string, fault: FaultType, o: ConnectionOptions & { duration?: number; factor?: number }) => {
    if (o.factor !== undefined && fault !== 'slow-boot') throw new InvalidArgumentError(`--factor applies only to slow-boot, not to ${fault}`);
    const body: Record<string, unknown> = { type: fault };
    if (o.duration !== undefined) body['durationSeconds'] = o.duration;
    if (o.factor !== undefined) body['factor'] = o.factor;
    const answer = await call(o, 'POST', `/sim/v1/machines/${encodeURIComponent(machine)}/faults`, body);
    const f = answer as { until?: string; factor?: number };
    const how = f.factor !== undefined ? ` (×${f.factor})` : '';
    process.stdout.write(`${machine}: ${fault}${how} injected ${f.until ? `until ${f.until}` : 'until cleared'}\n`);
  });

  withConnection(
    chaos
      .command('clear')
      .description('clear the faults of one machine (all of them, or one type with --fault)')
      .argument('<machine>', 'the machine name')
      .option('--fault <type>', `clear only this fault type (${FAULT_TYPES.join(', ')})`, parseFaultType),
  ).action(async (machine: string, o: ConnectionOptions & { fault?: FaultType }) => {
    const query = o.fault ? `?type=${encodeURIComponent(o.fault)}` : '';
    const answer = (await call(o, 'DELETE', `/sim/v1/machines/${encodeURIComponent(machine)}/faults${query}`)) as { cleared?: number; faults?: unknown[] };
    const cleared = answer.cleared ?? 0;
    const left = Array.isArray(answer.faults) ? answer.faults.length : 0;
    const what = o.fault ? `${o.fault} ` : '';
    process.stdout.write(
      cleared === 0
        ? `${machine}: no ${what}fault to clear\n`
        : `${machine}: cleared ${cleared} ${what}fault${cleared === 1 ? '' : 's'}${left > 0 ? ` (${left} left)` : ''}\n`,
    );
  });

  withConnection(
    chaos
      .command('list')
      .description('list the machines that have faults, and whether random chaos is running')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml', 'wide'])),
  ).action(async (o: ConnectionOptions & { output?: 'json' | 'yaml' | 'wide' }) => {
    const [machinesAnswer, faultsAnswer] = await Promise.all([call(o, 'GET', '/sim/v1/machines'), call(o, 'GET', '/sim/v1/faults')]);
    const machines = ((machinesAnswer as { machines?: MachineRow[] }).machines ?? []).filter((m) => Array.isArray(m.faults) && m.faults.length > 0);
    const chaosStatus = (faultsAnswer as { chaos?: ChaosRow }).chaos ?? { running: false, injected: 0 };
    if (o.output === 'json') {
      process.stdout.write(JSON.stringify({ machines, chaos: chaosStatus }, null, 2) + '\n');
      return;
    }
    if (o.output === 'yaml') {
      process.stdout.write(YAML.stringify({ machines, chaos: chaosStatus }));
      return;
    }
    const wide = o.output === 'wide';
    if (machines.length === 0) process.stdout.write('No machines with faults.\n');
    else {
      const header = wide ? ['MACHINE', 'FAULTS', 'POWER', 'PHASE', 'FACILITY', 'PLAN', 'LAST ERROR'] : ['MACHINE', 'FAULTS', 'POWER', 'PHASE'];
      const rows = machines.map((m) => {
        const row = [m.id, m.faults.map(describeFault).join(', '), m.power ?? '', m.phase ?? ''];
        if (wide) row.push(m.facility ?? '', m.plan ?? '', m.lastError ?? '');
        return row;
      });
      process.stdout.write(table([header, ...rows]));
    }
    if (chaosStatus.running) {
      process.stdout.write(
        `\nchaos: ${chaosStatus.rate} fault(s)/min of ${(chaosStatus.types ?? []).join(', ')}, each for ${formatSeconds((chaosStatus.durationMs ?? 0) / 1000)}; ${chaosStatus.injected} injected so far\n`,
      );
    }
  });

  withConnection(
    chaos
      .command('random')
      .description('inject random faults into random machines until `metalplane chaos stop`')
      .requiredOption('--rate <n>', 'faults per minute across the datacenter', parseRate)
      .option('--types <list>', `comma-separated fault types to pick from (default all: ${FAULT_TYPES.join(',')})`, parseFaultList)
      .option('--duration <duration>', 'how long each fault lasts, e.g. 30s (default 30s)', parseDuration)
      .option('--seed <n>', 'seed of the random choices, for a reproducible run', parseSeed),
  ).action(async (o: ConnectionOptions & { rate: number; types?: FaultType[]; duration?: number; seed?: number }) => {
    const body: Record<string, unknown> = { rate: o.rate };
    if (o.types) body['types'] = o.types;
    if (o.duration !== undefined) body['durationSeconds'] = o.duration;
    if (o.seed !== undefined) body['seed'] = o.seed;
    const s = (await call(o, 'POST', '/sim/v1/chaos', body)) as ChaosRow;
    process.stdout.write(
      `chaos started: ${s.rate} fault(s)/min of ${(s.types ?? []).join(', ')}, each for ${formatSeconds((s.durationMs ?? 0) / 1000)} (seed ${s.seed}); stop it with \`metalplane chaos stop\`\n`,
    );
  });

  withConnection(chaos.command('stop').description('stop random chaos (faults already injected stay until they expire or are cleared)')).action(
    async (o: ConnectionOptions) => {
      const s = (await call(o, 'DELETE', '/sim/v1/chaos')) as ChaosRow;
      process.stdout.write(`chaos stopped (${s.injected} fault(s) injected); injected faults stay until they expire or \`metalplane chaos clear\`\n`);
    },
  );

  return chaos;
}

interface MachineRow {
  id: string;
  power?: string;
  phase?: string;
  facility?: string;
  plan?: string;
  lastError?: string;
  faults: Array<{ type: string; until?: string; factor?: number }>;
}

interface ChaosRow {
  running: boolean;
  rate?: number;
  types?: string[];
  durationMs?: number;
  seed?: number;
  injected: number;
}

function withConnection(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'the metalplane server URL (default: from the kubeconfig)')
    .option('--token-file <path>', 'a file holding the bearer token (default: from the kubeconfig)')
    .option('--kubeconfig <path>', 'the kubeconfig `metalplane up` wrote (default: $METALPLANE_DATA_DIR/kubeconfig or ./.metalplane/kubeconfig)')
    .exitOverride();
}

// ---- argument parsers (their errors are usage errors: exit 2) ----------------------------------------------

function parseFaultType(v: string): FaultType {
  if (!(FAULT_TYPES as readonly string[]).includes(v)) throw new InvalidArgumentError(`"${v}" is not a fault type; valid: ${FAULT_TYPES.join(', ')}`);
  return v as FaultType;
}

function parseFaultList(v: string): FaultType[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError(`"${v}" names no fault type; valid: ${FAULT_TYPES.join(', ')}`);
  return list.map(parseFaultType);
}

/** `30s`, `5m`, `1h`, `1500ms` or a bare number of seconds → seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a duration; use e.g. 30s, 5m, 1h or 500ms`);
  const n = Number(m[1]);
  const seconds = m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
  if (!(seconds > 0)) throw new InvalidArgumentError(`"${v}" is not a positive duration`);
  return seconds;
}

function parseFactor(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 1) throw new InvalidArgumentError(`"${v}" is not a factor of at least 1`);
  return n;
}

function parseRate(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${v}" is not a positive number of faults per minute`);
  return n;
}

function parseSeed(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a non-negative integer`);
  return Number(v);
}

// ---- talking to the server -----------------------------------------------------------------------------------

/** One call of the sim API; answers the JSON body of a 2xx, throws an Error with the API's message otherwise. */
async function call(o: ConnectionOptions, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  const conn = connection(o);
  let answer: ApiAnswer;
  try {
    answer = await request(conn, method, path, body);
  } catch (err) {
    throw new Error(`${method} ${new URL(path, conn.server).toString()}: ${describeTransport(err)}`);
  }
  if (answer.status >= 200 && answer.status < 300) return answer.body;
  const said = apiMessage(answer.body);
  if (answer.status === 401) throw new Error(`unauthorized (HTTP 401${said ? `: ${said}` : ''}); check the token (--token-file or the kubeconfig's user token)`);
  if (answer.status === 404 && said === undefined) {
    throw new Error(`${method} ${path}: HTTP 404; is the simulated datacenter running (\`metalplane up\` without --no-sim)?`);
  }
  throw new Error(said ?? `${method} ${path}: HTTP ${answer.status}`);
}

/** The connection: --server/--token-file win; the rest comes from the kubeconfig. */
function connection(o: ConnectionOptions): Connection {
  const dataDir = resolve(process.env['METALPLANE_DATA_DIR'] || './.metalplane');
  const kubeconfigPath = o.kubeconfig !== undefined ? resolve(o.kubeconfig) : join(dataDir, 'kubeconfig');
  let fromKubeconfig: { server?: string; token?: string; ca?: string } = {};
  if (existsSync(kubeconfigPath)) fromKubeconfig = readKubeconfig(kubeconfigPath);
  else if (o.kubeconfig !== undefined) throw new InvalidArgumentError(`--kubeconfig ${o.kubeconfig}: no such file`);

  const serverText = o.server ?? fromKubeconfig.server;
  if (serverText === undefined) {
    throw new InvalidArgumentError(`no server: found no kubeconfig at ${kubeconfigPath}; start metalplane (\`metalplane up\`), or pass --server and --token-file`);
  }
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    throw new InvalidArgumentError(`--server "${serverText}" is not a URL; expected e.g. https://127.0.0.1:7080`);
  }
  if (server.protocol !== 'http:' && server.protocol !== 'https:') throw new InvalidArgumentError(`--server "${serverText}" must be an http:// or https:// URL`);

  let token = fromKubeconfig.token;
  if (o.tokenFile !== undefined) {
    try {
      token = readFileSync(resolve(o.tokenFile), 'utf8').trim();
    } catch (err) {
      throw new InvalidArgumentError(`--token-file ${o.tokenFile}: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else if (token === undefined && existsSync(join(dataDir, 'admin-token'))) {
    token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  }
  const conn: Connection = { server };
  if (token) conn.token = token;
  if (fromKubeconfig.ca !== undefined) conn.ca = fromKubeconfig.ca;
  return conn;
}

/** server, token and CA of the kubeconfig's current context (certificate-authority-data or -file, token or tokenFile). */
export function readKubeconfig(path: string): { server?: string; token?: string; ca?: string } {
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`kubeconfig ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const root = asObject(doc);
  const contexts = asArray(root['contexts']);
  const currentName = root['current-context'];
  const ctx = asObject(asObject(contexts.find((c) => asObject(c)['name'] === currentName) ?? contexts[0])['context']);
  const cluster = asObject(asObject(asArray(root['clusters']).find((c) => asObject(c)['name'] === ctx['cluster']) ?? asArray(root['clusters'])[0])['cluster']);
  const user = asObject(asObject(asArray(root['users']).find((u) => asObject(u)['name'] === ctx['user']) ?? asArray(root['users'])[0])['user']);
  const out: { server?: string; token?: string; ca?: string } = {};
  if (typeof cluster['server'] === 'string') out.server = cluster['server'];
  if (typeof cluster['certificate-authority-data'] === 'string') out.ca = Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8');
  else if (typeof cluster['certificate-authority'] === 'string') out.ca = readFileSync(resolve(path, '..', cluster['certificate-authority']), 'utf8');
  if (typeof user['token'] === 'string') out.token = user['token'];
  else if (typeof user['tokenFile'] === 'string') out.token = readFileSync(resolve(path, '..', user['tokenFile']), 'utf8').trim();
  return out;
}

function request(conn: Connection, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  const url = new URL(path, conn.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (conn.token) headers['authorization'] = `Bearer ${conn.token}`;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolvePromise, reject) => {
    const onAnswer = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = undefined;
        if (text.trim() !== '') {
          try {
            parsed = JSON.parse(text) as unknown;
          } catch {
            parsed = text;
          }
        }
        resolvePromise({ status: res.statusCode ?? 0, body: parsed });
      });
    };
    const req =
      url.protocol === 'https:'
        ? https.request(url, { method, headers, timeout: 30_000, ...(conn.ca ? { ca: conn.ca } : {}) }, onAnswer)
        : http.request(url, { method, headers, timeout: 30_000 }, onAnswer);
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The message of an error answer: `{ errors: [...] }` (sim API), a kube Status, or text. */
function apiMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return body.trim() === '' ? undefined : body.trim().slice(0, 500);
  const o = asObject(body);
  const errors = o['errors'];
  if (Array.isArray(errors) && errors.length > 0) return errors.map(String).join('; ');
  if (typeof o['message'] === 'string') return o['message'];
  return undefined;
}

function describeTransport(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'ECONNREFUSED') return 'connection refused; is metalplane running (`metalplane up`)?';
  if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return `TLS certificate not trusted (${code}); use the kubeconfig \`metalplane up\` wrote (it carries the CA)`;
  return typeof e?.message === 'string' ? `${e.message}${code ? ` (${code})` : ''}` : String(err);
}

// ---- output ----------------------------------------------------------------------------------------------------

function describeFault(f: { type: string; until?: string; factor?: number }): string {
  let s = f.type;
  if (f.factor !== undefined) s += ` ×${f.factor}`;
  if (f.until) {
    const left = Math.max(0, (Date.parse(f.until) - Date.now()) / 1000);
    s += ` (${formatSeconds(left)} left)`;
  }
  return s;
}

function formatSeconds(s: number): string {
  if (s >= 3600) return `${Math.round(s / 360) / 10}h`;
  if (s >= 120) return `${Math.round(s / 6) / 10}m`;
  return `${Math.round(s)}s`;
}

/** kubectl-style columns: left-aligned, three spaces apart. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
