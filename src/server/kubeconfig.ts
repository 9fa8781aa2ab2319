// Writes the kubeconfig that `metalplane up` hands to kubectl and client libraries: an HTTPS server URL,
// the CA as certificate-authority-data, and the admin bearer token.
import { writeFileSync, chmodSync } from 'node:fs';
import YAML from 'yaml';

export interface KubeconfigInput {
  server: string;
  caPem: string;
  token: string;
  name?: string;
}

export function renderKubeconfig(k: KubeconfigInput): string {
  const name = k.name ?? 'metalplane';
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    'current-context': name,
    clusters: [{ name, cluster: { server: k.server, 'certificate-authority-data': Buffer.from(k.caPem).toString('base64') } }],
    users: [{ name: `${name}-admin`, user: { token: k.token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: 'default' } }],
  });
}

export function writeKubeconfig(path: string, k: KubeconfigInput): void {
  writeFileSync(path, renderKubeconfig(k), { mode: 0o600 });
  chmodSync(path, 0o600);
}
