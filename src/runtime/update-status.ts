// Read-modify-write of an object's status with optimistic concurrency: read the current version, compute the
// new status, write it naming that version; on a conflict read again and decide again. Callers that share an
// object (the agent API and a controller on one Workflow or Hardware) each go through this.
import { isApiError } from '../lib/errors.js';
import type { KindDeclaration, StoredObject } from '../kinds/types.js';
import type { ObjectClient } from './client.js';

const MaxAttempts = 10;

/**
 * Applies `change` to the current object and writes the status it returns (undefined: write nothing).
 * Resolves to the stored object, or undefined when it is gone or nothing was written.
 */
export async function updateStatus<S>(
  client: ObjectClient,
  kind: KindDeclaration,
  namespace: string | undefined,
  name: string,
  fieldManager: string,
  change: (obj: StoredObject) => S | undefined,
): Promise<StoredObject | undefined> {
  for (let attempt = 0; attempt < MaxAttempts; attempt++) {
    const obj = await client.get(kind, namespace, name);
    if (!obj) return undefined;
    const next = change(obj);
    if (next === undefined) return undefined;
    try {
      return await client.updateStatus(kind, { ...obj, status: next }, { fieldManager });
    } catch (e) {
      if (isApiError(e) && e.code === 409) continue;
      if (isApiError(e) && e.code === 404) return undefined;
      throw e;
    }
  }
  throw new Error(`${kind.kind} ${namespace ? `${namespace}/` : ''}${name}: too many conflicting writes`);
}
