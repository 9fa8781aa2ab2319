// Hardware: one physical machine in a rack: where it is (metro, facility, rack, slot), what it is (plan,
// NICs, disks), how to reach its BMC, and what the controllers observed (state, power, agent, inventory).
// Cluster-scoped: machines belong to the operator, not to a project. A Device is bound to one Hardware.
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, StringEnum, Timestamp } from './common.js';
import type { KindDeclaration, KubeObject } from './types.js';
import { fieldInvalid } from './validation.js';

export const HardwareStates = ['discovering', 'available', 'provisioning', 'in-use', 'deprovisioning', 'failed', 'maintenance'] as const;
export type HardwareState = (typeof HardwareStates)[number];

export const MetroLabel = 'metalplane.dev/metro';
export const FacilityLabel = 'metalplane.dev/facility';
export const PlanLabel = 'metalplane.dev/plan';

const MacPattern = '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$';

const HardwareSpecSchema = Type.Object(
  {
    metro: Type.String({ minLength: 1, description: 'The metro code the machine is in, e.g. `da`.' }),
    facility: Type.String({ minLength: 1, description: 'The facility code the machine is racked in, e.g. `da11`.' }),
    rack: Type.Optional(Type.String({ description: 'The rack, e.g. `r07`.' })),
    slot: Type.Optional(Type.Integer({ minimum: 0, format: 'int32', description: 'The rack unit (slot) of the machine.' })),
    plan: Type.String({ minLength: 1, description: 'The plan (hardware class) of the machine, e.g. `c3.small.x86`.' }),
    bmc: Type.Object(
      {
        driver: StringEnum(['redfish', 'ipmi'], { description: 'The BMC protocol: redfish or ipmi.' }),
        address: Type.String({ minLength: 1, description: 'The BMC address: a Redfish base URL, e.g. `https://10.0.0.5`, or for IPMI `ipmi://10.0.0.5[:623]`.' }),
        systemId: Type.Optional(
          Type.String({ description: 'The Redfish system path, e.g. `/redfish/v1/Systems/1`; default: the only system.' }),
        ),
        credentialsSecret: Type.Object(
          {
            name: Type.String({ description: 'Name of a Secret with `username` and `password` keys.' }),
            namespace: Type.Optional(Type.String({ description: 'Its namespace (default `metalplane-system`).' })),
          },
          { description: 'The Secret holding the BMC credentials.' },
        ),
        insecureSkipVerify: Type.Optional(Type.Boolean({ description: 'Skip TLS verification of the BMC (self-signed BMCs).' })),
      },
      { description: 'How to reach the machine\'s baseboard management controller.' },
    ),
    nics: Type.Array(
      Type.Object(
        {
          name: Type.Optional(Type.String({ description: 'The interface name, e.g. `eth0`.' })),
          mac: Type.String({ pattern: MacPattern, description: 'The MAC address, lower case, e.g. `b4:96:91:0a:1b:2c`.' }),
          switchPort: Type.Optional(Type.String({ description: 'The switch port it is cabled to, e.g. `sw1-r07:Ethernet12`.' })),
          pxe: Type.Optional(Type.Boolean({ description: 'This NIC netboots (default: the first NIC).' })),
        },
        { description: 'A network interface.' },
      ),
      { minItems: 1, description: 'The network interfaces; the first (or the one with pxe) netboots.' },
    ),
    disks: Type.Optional(
      Type.Array(
        Type.Object(
          {
            device: Type.String({ description: 'The block device, e.g. `/dev/nvme0n1`.' }),
            sizeGB: Type.Integer({ minimum: 1, description: 'Capacity in GB.' }),
            type: Type.Optional(Type.String({ description: 'HDD, SSD or NVME.' })),
          },
          { description: 'A disk.' },
        ),
        { description: 'The disks.' },
      ),
    ),
    maintenance: Type.Optional(
      Type.Boolean({ description: 'Take the machine out of service: it is not scheduled and shows `maintenance`.' }),
    ),
  },
  { description: 'HardwareSpec describes the machine.' },
);

const HardwareStatusSchema = Type.Object(
  {
    state: Type.Optional(StringEnum(HardwareStates, { description: 'The lifecycle state of the machine.' })),
    power: Type.Optional(StringEnum(['on', 'off', 'unknown'], { description: 'The power state last read from the BMC.' })),
    claim: Type.Optional(
      Type.Object(
        {
          namespace: Type.String({ description: 'The namespace (project) of the Device.' }),
          name: Type.String({ description: 'The Device name.' }),
          uid: Type.String({ description: 'The Device uid.' }),
        },
        { description: 'The Device bound to this machine.' },
      ),
    ),
    workflow: Type.Optional(
      Type.Object(
        {
          namespace: Type.String({ description: 'Its namespace.' }),
          name: Type.String({ description: 'Its name.' }),
        },
        { description: 'The Workflow that owns the machine now (the agent takes its actions from it).' },
      ),
    ),
    agent: Type.Optional(
      Type.Object(
        {
          bootId: Type.Optional(Type.String({ description: 'The boot the agent runs in.' })),
          registeredAt: Type.Optional(Timestamp('When the agent of this boot registered.')),
          lastHeartbeat: Type.Optional(Timestamp('The last heartbeat of the agent.')),
          version: Type.Optional(Type.String({ description: 'The agent version.' })),
        },
        { description: 'The provisioning agent running on the machine, when it runs.' },
      ),
    ),
    inventory: Type.Optional(
      Type.Object(
        {
          cpus: Type.Optional(Type.Integer({ description: 'CPU count reported by the agent.' })),
          memoryGiB: Type.Optional(Type.Number({ description: 'Memory reported by the agent.' })),
          macs: Type.Optional(Type.Array(Type.String(), { description: 'MACs reported by the agent.' })),
          disks: Type.Optional(
            Type.Array(
              Type.Object({ device: Type.String(), sizeGB: Type.Number() }, { description: 'A disk seen by the agent.' }),
              { description: 'Disks reported by the agent.' },
            ),
          ),
        },
        { description: 'What the agent found on the machine.' },
      ),
    ),
    lastFailure: Type.Optional(
      Type.Object(
        {
          reason: Type.String({ description: 'CamelCase reason, e.g. `DiskFailure`.' }),
          message: Type.String({ description: 'What broke.' }),
          time: Timestamp('When it broke.'),
        },
        { description: 'The last failure seen on this machine.' },
      ),
    ),
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last reconciled.' })),
    conditions: Type.Optional(Conditions()),
  },
  { description: 'HardwareStatus is what the controllers observed.' },
);

export type HardwareSpec = Static<typeof HardwareSpecSchema>;
export type HardwareStatus = Static<typeof HardwareStatusSchema>;
export type HardwareClaim = NonNullable<HardwareStatus['claim']>;

export const hardwareKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Hardware',
  plural: 'hardware',
  singular: 'hardware',
  scope: 'Cluster',
  shortNames: ['hw'],
  categories: ['metalplane'],
  statusSubresource: true,
  description:
    'Hardware is one physical machine: where it is racked (metro, facility, rack, slot), its plan, NICs and disks, ' +
    'and how to reach its BMC. The controllers report its lifecycle state, power and agent in status. A Device is ' +
    'bound to one Hardware.',
  schema: Type.Object({ spec: HardwareSpecSchema, status: Type.Optional(HardwareStatusSchema) }),
  printerColumns: [
    { name: 'Facility', type: 'string', jsonPath: '.spec.facility', description: 'The facility.' },
    { name: 'Rack', type: 'string', jsonPath: '.spec.rack', description: 'The rack.' },
    { name: 'Plan', type: 'string', jsonPath: '.spec.plan', description: 'The plan.' },
    { name: 'State', type: 'string', jsonPath: '.status.state', description: 'The lifecycle state.' },
    { name: 'Power', type: 'string', jsonPath: '.status.power', description: 'The power state.' },
    { name: 'Device', type: 'string', jsonPath: '.status.claim.name', priority: 1, description: 'The bound Device.' },
    { name: 'BMC', type: 'string', jsonPath: '.spec.bmc.address', priority: 1, description: 'The BMC address.' },
  ],
  selectableFields: ['.spec.metro', '.spec.facility', '.spec.plan', '.status.state'],
  validate: (obj) => {
    const spec = obj.spec as HardwareSpec;
    const causes = [];
    const seen = new Set<string>();
    spec.nics.forEach((n, i) => {
      if (seen.has(n.mac)) causes.push(fieldInvalid(`spec.nics[${i}].mac`, n.mac, 'is listed twice'));
      seen.add(n.mac);
    });
    // Redfish BMCs are HTTP(S) services; IPMI ones are addressed as ipmi://host[:port] (UDP 623 by default).
    const schemes = spec.bmc.driver === 'ipmi' ? ['ipmi:'] : ['http:', 'https:'];
    try {
      const u = new URL(spec.bmc.address);
      if (!schemes.includes(u.protocol)) throw new Error();
    } catch {
      const want = spec.bmc.driver === 'ipmi' ? 'an ipmi://<host>[:<port>] address (driver ipmi)' : 'an http:// or https:// URL';
      causes.push(fieldInvalid('spec.bmc.address', spec.bmc.address, `must be ${want}`));
    }
    return causes;
  },
  normalize: (obj) => labelLocation(obj),
};

/** Hardware carries its metro, facility and plan as labels too, so `-l metalplane.dev/metro=da` selects it. */
function labelLocation(obj: KubeObject): void {
  const spec = obj.spec as HardwareSpec | undefined;
  if (!spec) return;
  const labels = (obj.metadata.labels ??= {});
  labels[MetroLabel] = spec.metro;
  labels[FacilityLabel] = spec.facility;
  labels[PlanLabel] = spec.plan;
}
