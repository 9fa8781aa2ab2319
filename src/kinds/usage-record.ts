// UsageRecord: one line of the hourly-usage ledger — a device's use of a machine of a plan, from when it was
// asked for until it was deleted, at the plan's price then. Cluster-scoped and named by the device's uid, so it
// outlives the device and its project (a bill does not vanish with the project) and a device has one record.
// The usage controller opens and closes records; billing by the hour is computed from them (src/metal-api/usage.ts).
import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';
import type { KindDeclaration } from './types.js';

const UsageRecordSpecSchema = Type.Object(
  {
    project: Type.String({ minLength: 1, description: 'The project (namespace) name.' }),
    projectUid: Type.String({ minLength: 1, description: 'The project\'s id (the namespace uid).' }),
    device: Type.String({ minLength: 1, description: 'The Device name.' }),
    deviceUid: Type.String({ minLength: 1, description: 'The Device uid (also this record\'s name).' }),
    hostname: Type.Optional(Type.String({ description: 'The device\'s hostname.' })),
    plan: Type.String({ minLength: 1, description: 'The plan the device runs on.' }),
    metro: Type.Optional(Type.String({ description: 'The metro.' })),
    facility: Type.Optional(Type.String({ description: 'The facility, once placed.' })),
    pricePerHour: Type.Number({ minimum: 0, description: 'USD per hour, from the plan when the record was opened.' }),
    start: Timestamp('When the device was asked for (its creation).'),
    end: Type.Optional(Timestamp('When its deletion was asked for; absent while it runs.')),
  },
  { description: 'UsageRecordSpec is one device\'s use of one plan.' },
);
export type UsageRecordSpec = Static<typeof UsageRecordSpecSchema>;

/** Whole hours billed for a span: every started hour counts, at least one (a device up 1 h 45 min is billed 2). */
export function billedHours(startMs: number, endMs: number): number {
  const ms = Math.max(0, endMs - startMs);
  return Math.max(1, Math.ceil(ms / 3_600_000));
}

export const usageRecordKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'UsageRecord',
  plural: 'usagerecords',
  singular: 'usagerecord',
  scope: 'Cluster',
  categories: ['metalplane'],
  description: 'UsageRecord is one device\'s hourly use of a plan: the ledger the Metal API\'s usages are computed from.',
  schema: Type.Object({ spec: UsageRecordSpecSchema }),
  printerColumns: [
    { name: 'Project', type: 'string', jsonPath: '.spec.project', description: 'The project.' },
    { name: 'Device', type: 'string', jsonPath: '.spec.device', description: 'The device.' },
    { name: 'Plan', type: 'string', jsonPath: '.spec.plan', description: 'The plan.' },
    { name: 'Start', type: 'date', jsonPath: '.spec.start', description: 'Since.' },
    { name: 'End', type: 'date', jsonPath: '.spec.end', description: 'Until (empty: running).' },
  ],
  selectableFields: ['.spec.project', '.spec.projectUid'],
};
