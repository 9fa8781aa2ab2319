// Read-modify-write of a Workflow's status with optimistic concurrency: the agent API and the workflow
// controller both move workflows, and a conflict just means "read again and re-decide".
import { isApiError } from '../../lib/errors.js';
import type { KindDeclaration, StoredObject } from '../../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import type { ObjectClient } from '../../runtime/client.js';

export const WorkflowFieldManager = 'metalplane-workflow';

/**
 * Applies `change` to the current status and writes it; retried on conflict. `change` returns undefined to
 * write nothing. Resolves to the stored workflow (or undefined when it is gone or nothing was written).
 */
export async function updateWorkflowStatus(
  client: ObjectClient,
  kind: KindDeclaration,
  namespace: string,
  name: string,
  change: (spec: WorkflowSpec, status: WorkflowStatus | undefined, wf: StoredObject) => WorkflowStatus | undefined,
): Promise<StoredObject | undefined> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const wf = await client.get(kind, namespace, name);
    if (!wf) return undefined;
    const next = change(wf.spec as WorkflowSpec, wf.status as WorkflowStatus | undefined, wf);
    if (!next) return undefined;
    try {
      return await client.updateStatus(kind, { ...wf, status: next }, { fieldManager: WorkflowFieldManager });
    } catch (e) {
      if (isApiError(e) && e.code === 409) continue;
      if (isApiError(e) && e.code === 404) return undefined;
      throw e;
    }
  }
  throw new Error(`workflow ${namespace}/${name}: too many conflicting writes`);
}
