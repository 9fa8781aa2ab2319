// Plan: a hardware class (Equinix Metal's word), e.g. `c3.small.x86`: CPUs, memory, drives, NICs and an hourly
// price. Hardware belongs to one plan; a Device asks for one. Cluster-scoped catalog data; the object name is
// the plan slug.
import { Type } from '@sinclair/typebox';
import { Conditions, MapOf, StringEnum } from './common.js';
import type { KindDeclaration, KubeObject, TableCell } from './types.js';
import { fieldInvalid } from './validation.js';

/** How much of a plan can be had in a place, as Equinix Metal's capacity endpoints name it. */
export const CapacityLevels = ['normal', 'limited', 'unavailable'] as const;
export type CapacityLevel = (typeof CapacityLevels)[number];

/** Counts of a plan's machines in one place. */
export interface CapacityCounts {
  total: number;
  available: number;
  inUse: number;
  failed: number;
  level: CapacityLevel;
}

export interface PlanCapacity extends CapacityCounts {
  metro: string;
  facilities: Array<CapacityCounts & { facility: string }>;
}

export interface PlanStatus {
  observedGeneration?: number;
  metros?: string[];
  capacity?: PlanCapacity[];
  conditions?: import('./types.js').Condition[];
}

const Count = (description: string) => Type.Integer({ minimum: 0, format: 'int32', description });

// `available` is required (the one count every reader needs); the controller always writes the others.
const CountFields = {
  available: Type.Integer({ minimum: 0, format: 'int32', description: 'Machines ready to be provisioned (available, unclaimed, not in maintenance).' }),
  total: Type.Optional(Count('Machines of the plan racked there, in any state.')),
  inUse: Type.Optional(Count('Machines claimed by a device (provisioning, in use or being deprovisioned).')),
  failed: Type.Optional(Count('Machines marked failed.')),
  level: Type.Optional(StringEnum(CapacityLevels, { description: 'Capacity level from the available machines: normal, limited or unavailable.' })),
};

const PlanSpecsSchema = Type.Object(
  {
    cpus: Type.Optional(
      Type.Array(
        Type.Object(
          {
            count: Count('How many CPUs (sockets) of this type.'),
            type: Type.String({ description: 'The CPU model, e.g. `Intel Xeon E-2378G 8-Core Processor @ 2.80GHz`.' }),
            cores: Type.Optional(Type.Integer({ minimum: 1, format: 'int32', description: 'Physical cores per CPU.' })),
          },
          { description: 'A group of identical CPUs.' },
        ),
        { description: 'The processors, grouped by model.' },
      ),
    ),
    memory: Type.Optional(
      Type.Object(
        { total: Type.String({ description: 'Total memory, e.g. `64GB`.' }) },
        { description: 'The memory of the machine.' },
      ),
    ),
    drives: Type.Optional(
      Type.Array(
        Type.Object(
          {
            count: Count('How many drives of this kind.'),
            size: Type.String({ description: 'Capacity of one drive, e.g. `480GB` or `3.84TB`.' }),
            type: StringEnum(['HDD', 'SSD', 'NVME'], { description: 'The drive technology: HDD, SSD or NVME.' }),
            category: Type.Optional(
              StringEnum(['boot', 'cache', 'storage'], {
                description: 'What the drives are for: boot (the OS is installed there), cache, or storage.',
              }),
            ),
          },
          { description: 'A group of identical drives.' },
        ),
        { description: 'The drives, grouped by size, type and category.' },
      ),
    ),
    nics: Type.Optional(
      Type.Array(
        Type.Object(
          {
            count: Count('How many ports of this speed.'),
            type: StringEnum(['1Gbps', '10Gbps', '25Gbps', '100Gbps'], { description: 'The port speed, e.g. `25Gbps`.' }),
          },
          { description: 'A group of identical network ports.' },
        ),
        { description: 'The network interfaces, grouped by speed.' },
      ),
    ),
    features: Type.Optional(
      Type.Object(
        {
          raid: Type.Optional(Type.Boolean({ description: 'Hardware RAID controller present.' })),
          txt: Type.Optional(Type.Boolean({ description: 'Intel Trusted Execution Technology supported.' })),
          uefi: Type.Optional(Type.Boolean({ description: 'Boots in UEFI mode.' })),
        },
        { description: 'Optional platform features.' },
      ),
    ),
  },
  { description: 'The hardware specification of machines of this plan.' },
);

export const planKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Plan',
  plural: 'plans',
  singular: 'plan',
  scope: 'Cluster',
  categories: ['metalplane', 'catalog'],
  statusSubresource: true,
  description:
    'Plan is a hardware class, e.g. `c3.small.x86`: its CPUs, memory, drives and NICs, where it is offered and ' +
    'its price per hour. Every Hardware belongs to one plan and every Device asks for one. The object name is ' +
    'the plan slug.',
  schema: Type.Object({
    spec: Type.Object(
      {
        slug: Type.Optional(Type.String({ description: 'The plan slug, e.g. `c3.small.x86`; equals metadata.name when set.' })),
        name: Type.Optional(Type.String({ description: 'A display name, e.g. `c3.small.x86`.' })),
        description: Type.Optional(Type.String({ description: 'A one-line description of what the plan is good for.' })),
        class: Type.Optional(Type.String({ description: 'The plan class, usually the slug, e.g. `c3.small.x86`.' })),
        line: Type.Optional(Type.String({ default: 'baremetal', description: 'The product line; `baremetal` for servers.' })),
        type: Type.Optional(
          StringEnum(['standard', 'workload_optimized', 'custom'], {
            description: 'The plan type: standard, workload_optimized or custom.',
          }),
        ),
        categories: Type.Optional(
          Type.Array(Type.String(), { description: 'Categories of the plan, like `compute` or `storage`.' }),
        ),
        specs: PlanSpecsSchema,
        pricing: Type.Optional(
          Type.Object(
            {
              hour: Type.Number({ minimum: 0, format: 'double', description: 'Price in USD per hour of use, e.g. `0.75`.' }),
              metros: Type.Optional(
                MapOf(Type.Number({ minimum: 0, format: 'double' }), {
                  description: 'Hourly prices (USD) that differ by metro, keyed by metro code.',
                }),
              ),
            },
            { description: 'The price of the plan.' },
          ),
        ),
        availableIn: Type.Optional(
          Type.Array(Type.String(), {
            description: 'Codes of the metros where the plan is offered, e.g. `da`, `ny`. Empty means nowhere.',
            'x-kubernetes-list-type': 'set',
          }),
        ),
        deploymentTypes: Type.Optional(
          Type.Array(StringEnum(['on_demand', 'spot_market']), {
            description: 'How machines of the plan can be deployed: on_demand and/or spot_market.',
            uniqueItems: true,
          }),
        ),
        legacy: Type.Optional(Type.Boolean({ description: 'A plan kept for existing devices, not offered for new ones.' })),
      },
      { description: 'PlanSpec describes the hardware class.' },
    ),
    status: Type.Optional(
      Type.Object(
        {
          observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last reconciled.' })),
          metros: Type.Optional(
            Type.Array(Type.String(), {
              description: 'Codes of the metros where machines of this plan exist (any state), from the Hardware; what `kubectl get plans` shows as METROS.',
              'x-kubernetes-list-type': 'set',
            }),
          ),
          capacity: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  metro: Type.String({ description: 'The metro code.' }),
                  ...CountFields,
                  facilities: Type.Optional(
                    Type.Array(
                      Type.Object(
                        { facility: Type.String({ description: 'The facility code.' }), ...CountFields },
                        { description: 'Machines of the plan in one facility of the metro.' },
                      ),
                      { description: 'The same counts per facility.', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['facility'] },
                    ),
                  ),
                },
                { description: 'Machines of the plan in one metro, counted from the Hardware.' },
              ),
              {
                description: 'Machines of the plan per metro (and facility): where it can be had, and how much.',
                'x-kubernetes-list-type': 'map',
                'x-kubernetes-list-map-keys': ['metro'],
              },
            ),
          ),
          conditions: Type.Optional(Conditions()),
        },
        { description: 'PlanStatus is what the controllers observed about the plan.' },
      ),
    ),
  }),
  printerColumns: [
    {
      name: 'CPU',
      type: 'string',
      jsonPath: '.spec.specs.cpus',
      description: 'CPUs, as count x model.',
      value: (obj): TableCell => groups(obj, 'cpus', (g) => `${g.count}x ${g.type}`),
    },
    { name: 'Memory', type: 'string', jsonPath: '.spec.specs.memory.total', description: 'Total memory.' },
    {
      name: 'Drives',
      type: 'string',
      jsonPath: '.spec.specs.drives',
      description: 'Drives, as count x size type.',
      value: (obj): TableCell => groups(obj, 'drives', (g) => `${g.count}x ${g.size} ${g.type}`),
    },
    { name: 'Price/Hr', type: 'number', jsonPath: '.spec.pricing.hour', description: 'USD per hour.' },
    {
      name: 'Metros',
      type: 'string',
      jsonPath: '.status.metros',
      description: 'Metros where machines of the plan exist (the catalog\'s offer until the capacity controller has counted).',
      value: (obj): TableCell => {
        const st = obj.status as PlanStatus | undefined;
        const metros = st?.metros ?? (obj.spec as { availableIn?: string[] } | undefined)?.availableIn;
        return metros && metros.length > 0 ? metros.join(',') : null;
      },
    },
    { name: 'Class', type: 'string', jsonPath: '.spec.class', priority: 1, description: 'The plan class.' },
    {
      name: 'NICs',
      type: 'string',
      jsonPath: '.spec.specs.nics',
      priority: 1,
      description: 'Network ports, as count x speed.',
      value: (obj): TableCell => groups(obj, 'nics', (g) => `${g.count}x ${g.type}`),
    },
  ],
  selectableFields: ['.spec.class', '.spec.line', '.spec.type'],
  validate: (obj) => {
    const spec = obj.spec as { slug?: string };
    if (spec.slug && obj.metadata.name && spec.slug !== obj.metadata.name) {
      return [fieldInvalid('spec.slug', spec.slug, `must equal metadata.name (${JSON.stringify(obj.metadata.name)})`)];
    }
    return [];
  },
};

/** `2x 480GB SSD, 2x 3.84TB NVME` from spec.specs.<list>; null (`<none>`) when absent. */
function groups(obj: KubeObject, list: 'cpus' | 'drives' | 'nics', show: (g: Record<string, unknown>) => string): TableCell {
  const specs = (obj.spec as { specs?: Record<string, unknown> } | undefined)?.specs;
  const items = specs?.[list];
  if (!Array.isArray(items) || items.length === 0) return null;
  return items.map((g) => show(g as Record<string, unknown>)).join(', ');
}
