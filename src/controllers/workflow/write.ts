// Read-modify-write of a Workflow's status: the agent API and the workflow controller both move workflows,
// and a conflict just means "read again and re-decide".
import type { KindDeclaration, StoredObject } from '../../kinds/types.js';
import type { WorkflowSpec, WorkflowStatus } from '../../kinds/workflow.js';
import type { ObjectClient } from '../../runtime/client.js';
import { updateStatus } from '../../runtime/update-status.js';

export const WorkflowFieldManager = 'metalplane-workflow';

/** Applies `change` to the current status and writes it; see runtime/update-status.ts. */
export function updateWorkflowStatus(
  client: ObjectClient,
  kind: KindDeclaration,
  namespace: string,
  name: string,
  change: (spec: WorkflowSpec, status: WorkflowStatus | undefined, wf: StoredObject) => WorkflowStatus | undefined,
): Promise<StoredObject | undefined> {
  return updateStatus(client, kind, namespace, name, WorkflowFieldManager, (wf) => change(wf.spec as WorkflowSpec, wf.status as WorkflowStatus | undefined, wf));
}
