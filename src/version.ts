// The version metalplane reports on /version and `metalplane version`. The kube-style major/minor tell
// clients which Kubernetes API level we emulate (kubectl warns on large skews).
import { readFileSync } from 'node:fs';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const METALPLANE_VERSION = packageVersion();

export const VERSION = {
  major: '1',
  minor: '32',
  gitVersion: `v1.32.0-metalplane.${METALPLANE_VERSION}`,
};
