// Workflow: the ordered actions run on one Hardware to provision, deprovision, reinstall or rescue it (or to
// discover a new machine), with per-action state, timing and message — the console draws it. Actions run by
// the controller through the BMC driver (`bmc`), by the agent on the machine, which pulls them over
// /agent/v1 (`agent`), or complete when the installed OS phones home (`os`). Namespaced: a Device's workflows
// live in its project; the machine's own — discovery, and the wipe when a device is deleted — in
// metalplane-system, so a wipe can run while its project is being deleted.
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, FreeForm, StringEnum, Timestamp } from './common.js';
import type { KindDeclaration, TableCell } from './types.js';

export const WorkflowPurposes = ['discover', 'provision', 'deprovision', 'reinstall', 'rescue'] as const;
export type WorkflowPurpose = (typeof WorkflowPurposes)[number];
export const ActionExecutors = ['bmc', 'agent', 'os'] as const;
export type ActionExecutor = (typeof ActionExecutors)[number];
export const ActionStates = ['pending', 'running', 'succeeded', 'failed', 'skipped'] as const;
export type ActionState = (typeof ActionStates)[number];
export const WorkflowStates = ['pending', 'running', 'succeeded', 'failed'] as const;
export type WorkflowState = (typeof WorkflowStates)[number];

const WorkflowSpecSchema = Type.Object(
  {
    hardware: Type.String({ minLength: 1, description: 'The Hardware the actions run on.' }),
    device: Type.Optional(Type.String({ description: 'The Device it is for (in deviceNamespace, default the workflow\'s own).' })),
    deviceNamespace: Type.Optional(
      Type.String({ description: 'The namespace of that Device when it is not the workflow\'s: a wipe runs in metalplane-system.' }),
    ),
    purpose: StringEnum(WorkflowPurposes, { description: 'discover, provision, deprovision, reinstall or rescue.' }),
    actions: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, description: 'The action name, unique in the workflow, e.g. `wipe-disks`.' }),
          executor: StringEnum(ActionExecutors, { description: 'Who runs it: bmc (the controller), agent, or os (the installed OS phoning home).' }),
          type: Type.String({ minLength: 1, description: 'What to do, e.g. `power-on-pxe`, `wipe-disks`, `stream-image`.' }),
          params: Type.Optional(FreeForm('Parameters of the action.')),
          timeoutSeconds: Type.Number({ minimum: 1, description: 'How long one attempt may take (in real-world seconds).' }),
          retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 20, description: 'Attempts after the first on a transient error.' })),
          skipIfWarm: Type.Optional(Type.Boolean({ description: 'Skip when the machine\'s agent already runs (warm pool).' })),
        },
        { description: 'One action.' },
      ),
      { minItems: 1, description: 'The actions, run in order.' },
    ),
  },
  { description: 'WorkflowSpec is what to run.' },
);

const WorkflowStatusSchema = Type.Object(
  {
    state: Type.Optional(StringEnum(WorkflowStates, { description: 'pending, running, succeeded or failed.' })),
    current: Type.Optional(Type.Integer({ minimum: 0, description: 'Index of the action being run.' })),
    actions: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ description: 'The action name.' }),
            state: StringEnum(ActionStates, { description: 'pending, running, succeeded, failed or skipped.' }),
            attempts: Type.Optional(Type.Integer({ minimum: 0, description: 'Attempts made.' })),
            startedAt: Type.Optional(Timestamp('When the current attempt started.')),
            finishedAt: Type.Optional(Timestamp('When it ended.')),
            message: Type.Optional(Type.String({ description: 'What happened.' })),
            progress: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'Percent done, for long actions.' })),
            retry: Type.Optional(
              Type.Object(
                {
                  failures: Type.Integer({ minimum: 1, description: 'Transient failures of this action so far (spent against spec retries).' }),
                  notBefore: Timestamp('When the next try may start: the backoff after the last failure.'),
                  reason: Type.String({ description: 'CamelCase reason of the last failure, e.g. `BMCUnreachable`.' }),
                  message: Type.String({ description: 'The last failure.' }),
                  attempt: Type.Optional(
                    Type.String({ description: 'The attempt (`restarts/attempts`) whose call failed; absent when reading the BMC failed.' }),
                  ),
                },
                {
                  description:
                    'The transient failures of a BMC action, kept here rather than in the controller so that after a leader change the next leader continues the count and waits out the same backoff.',
                },
              ),
            ),
          },
          { description: 'The state of one action.' },
        ),
        { description: 'One entry per spec action, in order.' },
      ),
    ),
    startedAt: Type.Optional(Timestamp('When the first action started.')),
    finishedAt: Type.Optional(Timestamp('When the workflow ended.')),
    failure: Type.Optional(
      Type.Object(
        {
          action: Type.String({ description: 'The action that failed.' }),
          reason: Type.String({ description: 'CamelCase reason, e.g. `DiskFailure`, `Timeout`, `BMCUnreachable`.' }),
          message: Type.String({ description: 'What broke.' }),
        },
        { description: 'Why the workflow failed.' },
      ),
    ),
    restarts: Type.Optional(Type.Integer({ minimum: 0, description: 'How often the workflow started over because the machine was lost.' })),
    conditions: Type.Optional(Conditions()),
  },
  { description: 'WorkflowStatus is how far it got.' },
);

export type WorkflowSpec = Static<typeof WorkflowSpecSchema>;
export type WorkflowStatus = Static<typeof WorkflowStatusSchema>;
export type WorkflowAction = WorkflowSpec['actions'][number];
export type ActionStatus = NonNullable<WorkflowStatus['actions']>[number];

export const workflowKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Workflow',
  plural: 'workflows',
  singular: 'workflow',
  scope: 'Namespaced',
  shortNames: ['wf'],
  categories: ['metalplane', 'all'],
  statusSubresource: true,
  description:
    'Workflow is the ordered list of actions run on one Hardware to discover, provision, deprovision, reinstall ' +
    'or rescue it, with the state, timing and message of each action.',
  schema: Type.Object({ spec: WorkflowSpecSchema, status: Type.Optional(WorkflowStatusSchema) }),
  printerColumns: [
    { name: 'Hardware', type: 'string', jsonPath: '.spec.hardware', description: 'The machine.' },
    { name: 'Purpose', type: 'string', jsonPath: '.spec.purpose', description: 'What it does.' },
    { name: 'State', type: 'string', jsonPath: '.status.state', description: 'The workflow state.' },
    {
      name: 'Action',
      type: 'string',
      jsonPath: '.status.current',
      description: 'The action being run (or that failed).',
      value: (obj): TableCell => {
        const st = obj.status as WorkflowStatus | undefined;
        if (!st?.actions || st.current === undefined) return null;
        const a = st.actions[Math.min(st.current, st.actions.length - 1)];
        return a ? `${a.name} (${st.current + 1}/${st.actions.length})` : null;
      },
    },
    { name: 'Device', type: 'string', jsonPath: '.spec.device', priority: 1, description: 'The device.' },
  ],
  selectableFields: ['.spec.hardware', '.spec.device', '.spec.purpose', '.status.state'],
};
