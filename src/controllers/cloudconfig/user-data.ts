// A device's user data, wherever it comes from: spec.userData, or the rendered document of the CloudConfig it
// names (spec.cloudConfigRef) — from that CloudConfig's status, or the Secret it owns. What the metadata
// service serves a machine and what the Metal API's `/devices/{id}/userdata` shows.
import type { CloudConfigStatus } from '../../kinds/cloud-config.js';
import type { DeviceSpec } from '../../kinds/device.js';
import type { StoredObject } from '../../kinds/types.js';
import type { ObjectClient } from '../../runtime/client.js';
import { deliveredUserData, documentOf } from './render.js';

type Reader = Pick<ObjectClient, 'get' | 'kind'>;

export interface DeviceUserData {
  /** The bytes a machine receives (gzip when the CloudConfig asks for gzip+base64). */
  bytes: Buffer;
  /** The document as text. */
  text: string;
}

/** The device's user data; undefined when it has none (or its CloudConfig has not rendered yet). */
export async function userDataOf(client: Reader, dev: StoredObject): Promise<DeviceUserData | undefined> {
  const spec = dev.spec as DeviceSpec;
  const cc = spec.cloudConfigRef ? await client.get(client.kind('metalplane.dev', 'CloudConfig'), dev.metadata.namespace, spec.cloudConfigRef.name) : undefined;
  const ref = (cc?.status as CloudConfigStatus | undefined)?.secretRef;
  const secret = ref ? await client.get(client.kind('', 'Secret'), dev.metadata.namespace, ref.name) : undefined;
  return userDataFrom(dev, cc, secret);
}

/**
 * The same from objects already at hand (informer caches): `cloudConfig` is the one the device names, `secret`
 * the one that CloudConfig's status points to, when it does.
 */
export function userDataFrom(dev: StoredObject, cloudConfig: StoredObject | undefined, secret: StoredObject | undefined): DeviceUserData | undefined {
  const spec = dev.spec as DeviceSpec;
  if (!spec.cloudConfigRef) return spec.userData === undefined ? undefined : { bytes: Buffer.from(spec.userData), text: spec.userData };
  const st = (cloudConfig?.status ?? {}) as CloudConfigStatus;
  const bytes = deliveredUserData(st, secret?.data as Record<string, string> | undefined);
  if (!bytes) return undefined;
  return { bytes, text: documentOf(bytes, st.encoding) };
}
