// The `metalplane` command line. Follows kubectl habits: --help everywhere, clear errors, exit codes
// (0 success, 1 failure, 2 usage error).
import { Command, InvalidArgumentError, CommanderError } from 'commander';
import { resolve } from 'node:path';
import pino from 'pino';
import { startServer } from '../server/server.js';
import { DataDirError } from '../server/data-dir.js';
import { chaosCommand } from './chaos.js';
import { backupCommands } from './backup.js';
import { simCommand } from './sim.js';
import { METALPLANE_VERSION, VERSION } from '../version.js';

import { untilSignalled } from './signals.js';
import { UsageError } from './usage.js';

export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not HOST:PORT (e.g. 127.0.0.1:7080 or [::1]:7080)`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) throw new InvalidArgumentError(`port ${port} is out of range (0-65535)`);
  return { host: host || '0.0.0.0', port };
}

/** `--machine-address`: HOST or HOST:PORT (the port defaults to the one metalplane listens on). */
export function parseMachineAddress(v: string): { host: string; port?: number } {
  const s = v.trim();
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(s) ?? (/^[0-9A-Fa-f:]+$/.test(s) && s.includes('::') ? [s, s, undefined, undefined] : null);
  if (!m || !(m[1] ?? m[2])) throw new InvalidArgumentError(`"${v}" is not HOST or HOST:PORT (e.g. metalplane.example.net, 10.0.0.10:7080 or [fd00::10]:7080)`);
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new InvalidArgumentError(`port ${port} is out of range (1-65535)`);
  return { host: (m[1] ?? m[2])!, ...(port !== undefined ? { port } : {}) };
}

function parsePositiveInt(v: string): number {
  if (!/^[0-9]+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a non-negative integer`);
  return Number(v);
}

function parseSpeed(v: string): number | 'max' {
  if (v === 'max') return 'max';
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${v}" is not a positive number or "max"`);
  return n;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function parseLogLevel(v: string): string {
  if (!LOG_LEVELS.includes(v)) throw new InvalidArgumentError(`"${v}" is not one of ${LOG_LEVELS.join(', ')}`);
  return v;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}

interface UpOptions {
  dataDir: string;
  listen: { host: string; port: number };
  simMachines: number;
  simSpeed: number | 'max';
  sim: boolean;
  logLevel: string;
  tlsSan: string[];
  machineAddress?: { host: string; port?: number };
  storeWait: number;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  insecureHttp?: boolean;
  store?: string;
  encryptionKeyFile?: string;
  bootInterface?: string;
  dhcp: string;
  dhcpRange?: string;
  dhcpRouter?: string;
  dhcpDns: string[];
  simUrl?: string;
  simTokenFile?: string;
  timeScale?: number;
}

/** `--time-scale`: like --sim-speed, "max" counting as 1000 (what an in-process sim at max gives the controllers). */
function parseTimeScale(v: string): number {
  const s = parseSpeed(v);
  return s === 'max' ? 1000 : s;
}

function parseSimUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError(`"${v}" is not a URL; expected the address \`metalplane sim\` printed, e.g. http://127.0.0.1:7081`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`"${v}" must be an http:// or https:// URL`);
  return u.origin;
}

export function buildProgram(): Command {
  const program = new Command('metalplane')
    .description('A self-hostable bare-metal cloud: Equinix-Metal-compatible and Kubernetes-compatible APIs in one process')
    .version(METALPLANE_VERSION, '-v, --version', 'print the metalplane version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    // Before the subcommands are added, so they inherit it: usage errors reach main() and exit 2.
    .exitOverride();

  program
    .command('up')
    .description('start the metalplane server on one port (TLS + loopback HTTP) and, unless --no-sim, a simulated datacenter')
    .option('--data-dir <dir>', 'where state, certificates, kubeconfig and admin token live', './.metalplane')
    .option('--listen <host:port>', 'address to serve HTTPS and loopback HTTP on', parseListen, { host: '127.0.0.1', port: 7080 })
    .option('--sim-machines <n>', 'simulated machines to create', parsePositiveInt, 48)
    .option('--sim-speed <x>', 'simulated hardware time scale (1 = real time, "max" = no artificial delay); also scales provisioning timeouts', parseSpeed, 10)
    .option('--sim', 'start the simulated datacenter (the default)', true)
    .option('--no-sim', 'do not start the simulated datacenter')
    .option('--log-level <level>', `log level (${LOG_LEVELS.join('|')})`, parseLogLevel, 'info')
    .option('--machine-address <host[:port]>', 'where machines reach this server, e.g. a load balancer in front of the replicas: written into iPXE scripts, the agent URL and metadata URLs, and added to the certificate (default: the boot interface address, else the listen address)', parseMachineAddress)
    .option('--tls-san <name|ip>', 'extra subject alternative name for the serving certificate (repeatable, comma-separated)', collect, [])
    .option('--tls-cert-file <file>', "serve this certificate (PEM) instead of a generated one")
    .option('--tls-key-file <file>', 'the private key (PEM) for --tls-cert-file')
    .option('--tls-ca-file <file>', 'the CA (PEM) that signed --tls-cert-file, written into the kubeconfig')
    .option('--insecure-http', 'serve every path over plain HTTP to every peer (not only loopback and machine paths)')
    .option(
      '--store <url>',
      'where state lives: sqlite:PATH (default: sqlite:<data-dir>/state.db) or postgres://user:pass@host:port/db[?schema=NAME], which several replicas may share (env METALPLANE_STORE)',
    )
    .option('--store-wait <seconds>', 'how long to wait at start-up for a PostgreSQL store that does not answer yet (it is starting, or failing over)', parsePositiveInt, 60)
    .option('--encryption-key-file <file>', 'the at-rest encryption keys (default: <data-dir>/encryption.key, created on first start); replicas sharing a store need the same file')
    .option('--boot-interface <if>', 'serve DHCP and TFTP for netbooting machines on this interface (e.g. br0); machines reach metalplane at its address')
    .option('--dhcp <mode>', 'with --boot-interface: proxy (beside an existing DHCP server), full (lease --dhcp-range) or off', 'proxy')
    .option('--dhcp-range <first-last>', 'full DHCP: the addresses to lease, e.g. 10.0.0.100-10.0.0.199')
    .option('--dhcp-router <ip>', 'full DHCP: the default gateway to hand out')
    .option('--dhcp-dns <ip>', 'full DHCP: a DNS server to hand out (repeatable, comma-separated)', collect, [])
    .option('--sim-url <url>', 'a simulated datacenter running as its own process (`metalplane sim`, which prints its URL): its switches are the network controller\'s switch driver, and /sim/v1 is passed on to it; implies --no-sim')
    .option('--sim-token-file <file>', 'with --sim-url: the file holding the token `metalplane sim` was given (default: <data-dir>/admin-token)')
    .option('--time-scale <x>', 'how much faster than real hardware the machines are, for provisioning timeouts ("max" = 1000; default: --sim-speed with the in-process sim, else 1); give the --speed of `metalplane sim`', parseTimeScale)
    .action(async (o: UpOptions) => {
      await runUp(o);
    });

  program
    .command('version')
    .description('print the metalplane version and the Kubernetes API level it serves')
    .option('-o, --output <format>', 'json or yaml')
    .action((o: { output?: string }) => {
      const v = { metalplane: METALPLANE_VERSION, kubernetesApi: VERSION.gitVersion, node: process.version };
      if (o.output === 'json') process.stdout.write(JSON.stringify(v, null, 2) + '\n');
      else if (o.output === 'yaml') process.stdout.write(`metalplane: ${v.metalplane}\nkubernetesApi: ${v.kubernetesApi}\nnode: ${v.node}\n`);
      else if (o.output) throw new UsageError(`unknown output format "${o.output}": use json or yaml`);
      else process.stdout.write(`metalplane ${v.metalplane} (Kubernetes API ${v.kubernetesApi}, Node ${v.node})\n`);
    });

  program.addCommand(chaosCommand());
  program.addCommand(simCommand({ parseListen, parseCount: parsePositiveInt, parseSpeed, parseLogLevel, logLevels: LOG_LEVELS }));
  for (const c of backupCommands()) program.addCommand(c);

  return program;
}

async function runUp(o: UpOptions): Promise<void> {
  if ((o.tlsCertFile === undefined) !== (o.tlsKeyFile === undefined)) {
    throw new UsageError('--tls-cert-file and --tls-key-file go together: give both or neither');
  }
  const dataDir = resolve(o.dataDir);
  if (!['proxy', 'full', 'off'].includes(o.dhcp)) throw new UsageError(`--dhcp ${o.dhcp}: use proxy, full or off`);
  if (o.dhcp === 'full' && !o.dhcpRange) throw new UsageError('--dhcp full needs --dhcp-range <first>-<last>');
  if (o.simTokenFile !== undefined && o.simUrl === undefined) throw new UsageError('--sim-token-file goes with --sim-url');
  // A sim of its own process replaces the in-process one: two would enroll the same machine names.
  const inProcessSim = o.sim && o.simUrl === undefined;
  const server = await startServer({
    dataDir,
    host: o.listen.host,
    port: o.listen.port,
    logLevel: o.logLevel,
    tlsSans: o.tlsSan,
    machineAddress: o.machineAddress,
    storeWaitMs: o.storeWait * 1000,
    tlsCertFile: o.tlsCertFile,
    tlsKeyFile: o.tlsKeyFile,
    tlsCaFile: o.tlsCaFile,
    insecureHttp: o.insecureHttp,
    store: o.store ?? (process.env.METALPLANE_STORE || undefined),
    encryptionKeyFile: o.encryptionKeyFile === undefined ? undefined : resolve(o.encryptionKeyFile),
    sim: inProcessSim ? { machines: o.simMachines, speed: o.simSpeed } : undefined,
    ...(o.simUrl !== undefined ? { externalSim: { url: o.simUrl, ...(o.simTokenFile !== undefined ? { tokenFile: resolve(o.simTokenFile) } : {}) } } : {}),
    ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}),
    ...(o.bootInterface
      ? {
          boot: {
            interface: o.bootInterface,
            dhcp: o.dhcp as 'proxy' | 'full' | 'off',
            ...(o.dhcpRange ? { range: o.dhcpRange } : {}),
            ...(o.dhcpRouter ? { router: o.dhcpRouter } : {}),
            ...(o.dhcpDns.length ? { dns: o.dhcpDns } : {}),
          },
        }
      : {}),
    logDestination: pino.destination(2) as unknown as NodeJS.WritableStream,
  });
  const simNote = inProcessSim
    ? `simulated datacenter: ${o.simMachines} machines at speed ${o.simSpeed} (BMCs at ${server.sim?.bmcUrl}; try: kubectl apply -f examples/device.yaml)`
    : o.simUrl !== undefined
      ? `simulated datacenter: its own process at ${o.simUrl} (switches, /sim/v1)`
      : 'simulated datacenter: off';
  process.stdout.write(
    [
      `metalplane ${METALPLANE_VERSION} ready`,
      `  kube API:    ${server.url}   (kubectl --kubeconfig ${server.kubeconfigPath} get plans)`,
      `  console:     ${server.consoleUrl}   (sign-in link, works once)`,
      `  kubeconfig:  ${server.kubeconfigPath}`,
      `  admin token: ${server.adminTokenPath}`,
      `  CA:          ${server.caPath}`,
      `  ${simNote}`,
      '',
    ].join('\n'),
  );
  await untilSignalled('', () => server.close());
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; usage mistakes exit 2 like kubectl's flag errors.
      process.exit(e.exitCode === 0 ? 0 : 2);
    }
    // A --data-dir that is not safe to keep keys in is a mistake in how metalplane was called.
    if (e instanceof UsageError || e instanceof InvalidArgumentError || e instanceof DataDirError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
