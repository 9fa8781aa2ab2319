// `metalplane sim`: the simulated datacenter as its own process, so its machines outlive any control-plane
// replica, as real racks do. It enrolls its machines through the server's kube API (HTTPS, verified against
// metalplane's CA, with an operator's bearer token) and serves their BMCs, the switch fabric's API and its
// operator API on its own port. Exit status: 0 after a signal, 1 when the server cannot be reached or refuses
// the token (the message says which), 2 for a usage error.
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import pino from 'pino';
import { KubeHttpClient } from '../sim/kube-client.js';
import { startSimProcess } from '../sim/process.js';
import type { SimSpeed } from '../sim/clock.js';
import { readKubeconfig } from './chaos.js';
import { untilSignalled } from './signals.js';
import { UsageError } from './usage.js';

export const DEFAULT_SIM_LISTEN = '127.0.0.1:7081';

interface SimOptions {
  server?: string;
  tokenFile?: string;
  caFile?: string;
  kubeconfig?: string;
  machines: number;
  speed: SimSpeed;
  listen: { host: string; port: number };
  advertiseUrl?: string;
  machineUrl?: string;
  logLevel: string;
}

export interface SimCommandParsers {
  parseListen(v: string): { host: string; port: number };
  parseCount(v: string): number;
  parseSpeed(v: string): SimSpeed;
  parseLogLevel(v: string): string;
  logLevels: readonly string[];
}

export function simCommand(p: SimCommandParsers): Command {
  return new Command('sim')
    .description('run the simulated datacenter as its own process: machines with Redfish BMCs and netbooting agents, enrolled into a metalplane server')
    .option('--server <url>', 'the metalplane server (any replica or their load balancer), e.g. https://10.0.0.5:7080 (default: from --kubeconfig)')
    .option('--token-file <file>', "a file holding an operator's bearer token, e.g. the server's <data-dir>/admin-token (default: from --kubeconfig)")
    .option('--ca-file <file>', "the CA (PEM) that verifies the server's certificate, e.g. the server's <data-dir>/ca.crt (default: from --kubeconfig, else the system's trust store)")
    .option('--kubeconfig <file>', 'take server, CA and token from this kubeconfig (the one `metalplane up` writes); --server, --ca-file and --token-file override it')
    .option('--machines <n>', 'simulated machines to create', p.parseCount, 48)
    .option('--speed <x>', 'simulated hardware time scale (1 = real time, "max" = no artificial delay); give the servers the same with `metalplane up --time-scale`', p.parseSpeed, 10)
    .addOption(
      new Option('--listen <host:port>', 'where to serve the BMCs (Redfish), the switch API and the operator API (/sim/v1)')
        .argParser(p.parseListen)
        .default(p.parseListen(DEFAULT_SIM_LISTEN), DEFAULT_SIM_LISTEN),
    )
    .option('--advertise-url <url>', 'the URL the servers reach this process at: the BMC address enrolled in each Hardware (default: http://<listen address>)')
    .option('--machine-url <url>', 'the plain-HTTP URL machines netboot from and their agents call (default: --server with http://, which metalplane serves machines on the same port)')
    .option('--log-level <level>', `log level (${p.logLevels.join('|')})`, p.parseLogLevel, 'info')
    .addHelpText(
      'after',
      '\nThe operator API (/sim/v1: faults, chaos, consoles) and the switch API (/switch/v1) accept the same token as\n' +
        'the one given here. Tell the servers where the switches are, and how fast the machines are:\n\n' +
        '  metalplane up --sim-url http://127.0.0.1:7081 --time-scale 10\n' +
        '  metalplane sim --kubeconfig .metalplane/kubeconfig --machines 48 --speed 10\n' +
        '  metalplane chaos list --server http://127.0.0.1:7081 --token-file .metalplane/admin-token\n',
    )
    .exitOverride()
    .action(async (o: SimOptions) => {
      await runSim(o);
    });
}

interface Connection {
  server: URL;
  token: string;
  ca?: string;
}

/** --server, --token-file and --ca-file win; the rest comes from --kubeconfig. Mistakes are usage errors (exit 2). */
export function simConnection(o: Pick<SimOptions, 'server' | 'tokenFile' | 'caFile' | 'kubeconfig'>): Connection {
  let fromKubeconfig: { server?: string; token?: string; ca?: string } = {};
  if (o.kubeconfig !== undefined) {
    const path = resolve(o.kubeconfig);
    if (!existsSync(path)) throw new UsageError(`--kubeconfig ${o.kubeconfig}: no such file`);
    fromKubeconfig = readKubeconfig(path);
  }
  const serverText = o.server ?? fromKubeconfig.server;
  if (serverText === undefined) throw new UsageError('no server: pass --server https://HOST:PORT (with --token-file and --ca-file), or --kubeconfig');
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    throw new UsageError(`--server "${serverText}" is not a URL; expected e.g. https://127.0.0.1:7080`);
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:') throw new UsageError(`--server "${serverText}" must be an https:// URL`);
  const token = o.tokenFile !== undefined ? readText(o.tokenFile, '--token-file').trim() : fromKubeconfig.token;
  if (!token) throw new UsageError(o.tokenFile !== undefined ? `--token-file ${o.tokenFile} is empty` : 'no token: pass --token-file (e.g. the server\'s <data-dir>/admin-token) or a --kubeconfig with a user token');
  const ca = o.caFile !== undefined ? readText(o.caFile, '--ca-file') : fromKubeconfig.ca;
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${o.caFile !== undefined ? `--ca-file ${o.caFile}` : 'the kubeconfig\'s CA'} holds no PEM certificate`);
  return { server, token, ...(ca !== undefined ? { ca } : {}) };
}

function readText(file: string, flag: string): string {
  try {
    return readFileSync(resolve(file), 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseUrlOption(v: string | undefined, flag: string): string | undefined {
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError(`${flag} "${v}" is not a URL; expected e.g. http://10.0.0.9:7081`);
  }
  if (u.protocol !== 'http:') throw new InvalidArgumentError(`${flag} "${v}" must be an http:// URL`);
  return u.origin;
}

async function runSim(o: SimOptions): Promise<void> {
  const conn = simConnection(o);
  const advertiseUrl = parseUrlOption(o.advertiseUrl, '--advertise-url');
  // metalplane serves machines plain HTTP on its one port (they fetch the CA there before they can verify it).
  const machineUrl = parseUrlOption(o.machineUrl, '--machine-url') ?? `http://${conn.server.host}`;
  const log = pino({ level: o.logLevel, base: { process: 'metalplane-sim' } }, pino.destination(2));
  const client = new KubeHttpClient({ server: conn.server, token: conn.token, ...(conn.ca !== undefined ? { ca: conn.ca } : {}) });
  // Before anything listens: an unreachable server or a refused token is the most likely mistake, said plainly.
  try {
    await client.list(client.kind('metalplane.dev', 'Hardware'), { limit: 1 });
  } catch (err) {
    client.close();
    throw new Error(`cannot enroll machines into ${conn.server.origin}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const running = await startSimProcess({
    machines: o.machines,
    speed: o.speed,
    client,
    machineServerUrl: machineUrl,
    token: conn.token,
    host: o.listen.host,
    port: o.listen.port,
    ...(advertiseUrl !== undefined ? { advertiseUrl } : {}),
    logger: log,
  }).catch((err: unknown) => {
    client.close();
    throw err;
  });
  const e = running.enrollment;
  process.stdout.write(
    [
      `metalplane sim ready: ${o.machines} machines at speed ${o.speed}`,
      `  BMCs and APIs: ${running.url}   (Redfish /redfish/v1, switch API /switch/v1, operator API /sim/v1)`,
      `  server:        ${conn.server.origin}   (machines netboot from ${machineUrl})`,
      `  enrolled:      ${e.hardwareCreated} Hardware created, ${e.hardwareUpdated} updated; ${e.secretsCreated} BMC Secrets created, ${e.secretsUpdated} updated`,
      `  servers:       metalplane up … --sim-url ${running.url} --sim-token-file <token file> --time-scale ${o.speed === 'max' ? 'max' : o.speed}`,
      '',
    ].join('\n'),
  );
  await untilSignalled('the simulated datacenter', async () => {
    await running.close();
    client.close();
  });
}
