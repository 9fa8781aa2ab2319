// VLANAssignmentBatch: the record of one Metal API "VLAN assignment batch" on a port — the VLANs to add and
// remove in one go. The API applies the batch to the Device's spec.network in one write and keeps this record of
// it (which device generation carried it), so the batch's state is read off the device: completed once the
// network controller told the switch that generation. Owned by the Device, deleted with it.
import { Type } from '@sinclair/typebox';
import { StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';

export interface VLANAssignmentBatchSpec {
  device: string;
  port: string;
  /** The Device's metadata.generation that carries the batch (absent: the batch changed nothing). */
  deviceGeneration?: number;
  assignments: Array<{ vlan: number; virtualNetwork: string; state: 'assigned' | 'unassigned'; native?: boolean }>;
  errors?: string[];
}

export const vlanAssignmentBatchKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'VLANAssignmentBatch',
  plural: 'vlanassignmentbatches',
  singular: 'vlanassignmentbatch',
  scope: 'Namespaced',
  categories: ['metalplane'],
  description:
    'VLANAssignmentBatch records one batch of VLAN assignments and removals on a device port (the Metal API\'s ' +
    'port VLAN assignment batches). It is applied to the Device\'s spec.network when created.',
  schema: Type.Object({
    spec: Type.Object(
      {
        device: Type.String({ description: 'The Device.' }),
        port: Type.String({ description: 'The port, e.g. `bond0` or `eth1`.' }),
        deviceGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The Device generation that carries the batch.' })),
        assignments: Type.Array(
          Type.Object(
            {
              vlan: Type.Integer({ description: 'The vxlan.' }),
              virtualNetwork: Type.String({ description: 'The VirtualNetwork name.' }),
              state: StringEnum(['assigned', 'unassigned'], { description: 'Add (assigned) or remove (unassigned).' }),
              native: Type.Optional(Type.Boolean({ description: 'Make it the native (untagged) VLAN.' })),
            },
            { description: 'One VLAN of the batch.' },
          ),
          { description: 'What the batch asks for.' },
        ),
        errors: Type.Optional(Type.Array(Type.String(), { description: 'Why the batch could not be applied.' })),
      },
      { description: 'VLANAssignmentBatchSpec is the batch.' },
    ),
  }),
  printerColumns: [
    { name: 'Device', type: 'string', jsonPath: '.spec.device', description: 'The device.' },
    { name: 'Port', type: 'string', jsonPath: '.spec.port', description: 'The port.' },
    { name: 'Generation', type: 'integer', jsonPath: '.spec.deviceGeneration', description: 'The device generation that carries it.' },
  ],
  selectableFields: ['.spec.device'],
};
