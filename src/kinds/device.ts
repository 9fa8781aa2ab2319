// Device: a tenant's server (Equinix Metal's word), in a project (namespace). The user asks for a metro (or
// facility), a plan and an operating system; the scheduler binds it to one available Hardware and allocates
// its IPs in one transaction, and the device controller drives the provisioning Workflow until it is
// `active`. Status uses Equinix Metal's state words.
import { Type, type Static } from '@sinclair/typebox';
import { Conditions, FreeForm, IntegerEnum, StringEnum, Timestamp } from './common.js';
import type { KindDeclaration, KubeObject, TableCell } from './types.js';
import { fieldInvalid, fieldRequired } from './validation.js';
import { scriptUrlProblem } from '../lib/url.js';
import { DeviceNetworkSchema, DeviceNetworkStatusSchema, validateDeviceNetwork } from './device-network.js';

export const DeviceStates = [
  'queued',
  'provisioning',
  'active',
  'powering_off',
  'powering_on',
  'inactive',
  'reinstalling',
  'deprovisioning',
  'failed',
] as const;
export type DeviceState = (typeof DeviceStates)[number];

export const DeviceActions = ['power_on', 'power_off', 'reboot', 'reinstall', 'rescue'] as const;
export type DeviceActionType = (typeof DeviceActions)[number];

/**
 * Annotation that asks for a device action: `<type>` or `<type>/<request id>` (e.g. `reboot/2`). A new value
 * (compared with status.lastAction.request) is carried out once; the result is reported in status.lastAction.
 */
export const DeviceActionAnnotation = 'metalplane.dev/action';

/** Holds a deleted Device until its machine is wiped and its IPs are released. */
export const DeviceFinalizerName = 'metalplane.dev/device';
/** Held by the usage controller until the device's usage record is closed. */
export const UsageFinalizerName = 'metalplane.dev/usage';

const DeviceIpSchema = Type.Object(
  {
    address: Type.String({ description: 'The address, e.g. `147.75.80.17`.' }),
    network: Type.String({ description: 'The network address of the assignment, e.g. `147.75.80.16`.' }),
    cidr: Type.Integer({ description: 'Prefix length, e.g. 31.' }),
    gateway: Type.String({ description: 'The gateway, e.g. `147.75.80.16`.' }),
    netmask: Type.Optional(Type.String({ description: 'The IPv4 netmask, e.g. `255.255.255.254`.' })),
    family: IntegerEnum([4, 6], { description: 'Address family: 4 or 6.' }),
    public: Type.Boolean({ description: 'Reachable from the internet (public) or only inside the project (private).' }),
  },
  { description: 'An IP address assigned to the device.' },
);

const AddressRequestSchema = Type.Object(
  {
    family: IntegerEnum([4, 6], { description: 'Address family: 4 or 6.' }),
    public: Type.Boolean({ description: 'Public (true) or private (false).' }),
  },
  { description: 'One address to assign.' },
);

/**
 * The Device fields the Metal API's device carries beyond scheduling and provisioning (issue 15), kept on the
 * Device so that both APIs show the same object.
 */
const MetalApiSpecFields = {
  description: Type.Optional(Type.String({ maxLength: 1024, description: 'A free-text description of the device or how it is used.' })),
  customData: Type.Optional(FreeForm('Arbitrary JSON about the device (the Metal API\'s `customdata`), kept as given.')),
  terminationTime: Type.Optional(
    Timestamp('When the device is to be deleted (the Metal API\'s `termination_time`): the termination controller deletes it then.'),
  ),
  sshKeyUsers: Type.Optional(
    Type.Array(Type.String(), {
      description:
        'Users (User names) whose personal SSH keys — SSHKey objects with spec.owner in the metalplane-system namespace — are installed as well as the project keys.',
      'x-kubernetes-list-type': 'set',
    }),
  ),
};

const DeviceSpecSchema = Type.Object(
  {
    hostname: Type.Optional(
      Type.String({ maxLength: 63, description: 'The hostname (default: the object name).' }),
    ),
    metro: Type.Optional(Type.String({ description: 'The metro code to deploy in, e.g. `da`. Either metro or facility is required.' })),
    facility: Type.Optional(Type.String({ description: 'The facility code to deploy in, e.g. `da11`.' })),
    plan: Type.String({ minLength: 1, description: 'The plan slug, e.g. `c3.small.x86`.' }),
    operatingSystem: Type.String({ minLength: 1, description: 'The operating system slug, e.g. `ubuntu_24_04` or `custom_ipxe`.' }),
    userData: Type.Optional(Type.String({ description: 'User data for cloud-init (a #cloud-config document or a script).' })),
    cloudConfigRef: Type.Optional(
      Type.Object(
        { name: Type.String({ minLength: 1, maxLength: 253, description: 'The CloudConfig, in this namespace.' }) },
        {
          description:
            'Use a CloudConfig\'s rendered document as user data, instead of spec.userData. The device is scheduled at once; ' +
            'its provisioning starts when the CloudConfig is Ready.',
        },
      ),
    ),
    sshKeys: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Names of SSHKey objects of the project to install (absent: all of the project\'s keys; empty: none).',
        'x-kubernetes-list-type': 'set',
      }),
    ),
    tags: Type.Optional(Type.Array(Type.String(), { description: 'Free-form tags.', 'x-kubernetes-list-type': 'set' })),
    hardwareReservation: Type.Optional(
      Type.String({ description: 'Deploy on this Hardware (a reserved machine), by name. `next-available` is accepted and means any.' }),
    ),
    ipxeScriptUrl: Type.Optional(Type.String({ description: 'The iPXE script URL for operatingSystem `custom_ipxe`.' })),
    alwaysPxe: Type.Optional(Type.Boolean({ description: 'Netboot at every boot, not only the first (custom_ipxe).' })),
    locked: Type.Optional(Type.Boolean({ description: 'A locked device cannot be deleted or reinstalled until unlocked.' })),
    billingCycle: Type.Optional(StringEnum(['hourly', 'daily', 'monthly', 'yearly'], { description: 'Billing cycle (default hourly).' })),
    remediation: Type.Optional(
      StringEnum(['none', 'reschedule'], {
        description: 'What to do when the machine fails while provisioning: none (end failed) or reschedule onto another machine.',
      }),
    ),
    ipAddresses: Type.Optional(
      Type.Array(AddressRequestSchema, { description: 'Which addresses to assign (default: public IPv4, private IPv4 and public IPv6).' }),
    ),
    ...MetalApiSpecFields,
    // ---- layer 2 / BGP (src/kinds/device-network.ts)
    network: Type.Optional(DeviceNetworkSchema),
  },
  { description: 'DeviceSpec is what the user asked for.' },
);

const DeviceStatusSchema = Type.Object(
  {
    state: Type.Optional(StringEnum(DeviceStates, { description: 'The device state, in Equinix Metal\'s words.' })),
    hardware: Type.Optional(Type.String({ description: 'The Hardware the device is bound to.' })),
    facility: Type.Optional(Type.String({ description: 'The facility of that Hardware.' })),
    metro: Type.Optional(Type.String({ description: 'The metro of that Hardware.' })),
    ipAddresses: Type.Optional(Type.Array(DeviceIpSchema, { description: 'Assigned IP addresses.' })),
    provisioningPercentage: Type.Optional(
      Type.Number({ minimum: 0, maximum: 100, description: 'How far provisioning is, 0–100.' }),
    ),
    workflow: Type.Optional(Type.String({ description: 'The current Workflow.' })),
    workflowNamespace: Type.Optional(
      Type.String({
        description:
          'The namespace of the current Workflow when it is not the device\'s own: the wipe at deletion belongs to the ' +
          'machine and runs in `metalplane-system`, so it can finish while the project is being deleted.',
      }),
    ),
    provisionedAt: Type.Optional(Timestamp('When the device last became active after provisioning.')),
    failure: Type.Optional(
      Type.Object(
        {
          reason: Type.String({ description: 'CamelCase reason.' }),
          message: Type.String({ description: 'What broke.' }),
          time: Timestamp('When.'),
          hardware: Type.Optional(Type.String({ description: 'The machine it broke on.' })),
        },
        { description: 'The last failure.' },
      ),
    ),
    rescheduled: Type.Optional(Type.Integer({ minimum: 0, description: 'How often the device was moved to another machine.' })),
    lastAction: Type.Optional(
      Type.Object(
        {
          request: Type.String({ description: 'The annotation value that asked for it.' }),
          type: StringEnum(DeviceActions, { description: 'The action.' }),
          state: StringEnum(['pending', 'running', 'succeeded', 'failed'], { description: 'Where it is.' }),
          message: Type.Optional(Type.String({ description: 'Detail.' })),
          time: Type.Optional(Timestamp('When it last changed.')),
        },
        { description: 'The last action asked for with the annotation.' },
      ),
    ),
    cloudConfig: Type.Optional(
      Type.Object(
        {
          name: Type.String({ description: 'The CloudConfig of spec.cloudConfigRef.' }),
          hash: Type.Optional(Type.String({ description: 'The hash of the render the machine was last provisioned with.' })),
          waiting: Type.Optional(Type.String({ description: 'While provisioning waits for the CloudConfig: what it waits for.' })),
        },
        { description: 'The user data from a CloudConfig: which render the machine runs, or what provisioning waits for.' },
      ),
    ),
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last reconciled.' })),
    conditions: Type.Optional(Conditions('Scheduled, Provisioned and Ready, with reasons.')),
    // ---- what the network controller told the switch (src/kinds/device-network.ts)
    network: Type.Optional(DeviceNetworkStatusSchema),
  },
  { description: 'DeviceStatus is what the controllers did.' },
);

export type DeviceSpec = Static<typeof DeviceSpecSchema>;
export type DeviceStatus = Static<typeof DeviceStatusSchema>;
export type DeviceIp = Static<typeof DeviceIpSchema>;
export type AddressRequest = Static<typeof AddressRequestSchema>;
export type DeviceAction = NonNullable<DeviceStatus['lastAction']>;
export type DeviceFailure = NonNullable<DeviceStatus['failure']>;

/** What `spec.ipAddresses` is when the user leaves it out (Equinix Metal's default). */
export const DefaultDeviceAddresses: readonly AddressRequest[] = Object.freeze([
  { family: 4, public: true },
  { family: 4, public: false },
  { family: 6, public: true },
]);

export const deviceKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'Device',
  plural: 'devices',
  singular: 'device',
  scope: 'Namespaced',
  shortNames: ['dev'],
  categories: ['metalplane', 'all'],
  statusSubresource: true,
  description:
    'Device is a server of a project: a metro (or facility), a plan and an operating system, with user data and ' +
    'SSH keys. It is bound to one Hardware, gets public and private IPs, and is provisioned by a Workflow until ' +
    'it is `active`. Actions (power_on, power_off, reboot, reinstall, rescue) are asked for with the ' +
    '`metalplane.dev/action` annotation.',
  schema: Type.Object({ spec: DeviceSpecSchema, status: Type.Optional(DeviceStatusSchema) }),
  printerColumns: [
    { name: 'Hostname', type: 'string', jsonPath: '.spec.hostname', description: 'The hostname.' },
    {
      name: 'Metro',
      type: 'string',
      jsonPath: '.status.metro',
      description: 'The metro.',
      value: (obj): TableCell => (obj.status as DeviceStatus | undefined)?.metro ?? (obj.spec as DeviceSpec).metro ?? null,
    },
    { name: 'Plan', type: 'string', jsonPath: '.spec.plan', description: 'The plan.' },
    { name: 'State', type: 'string', jsonPath: '.status.state', description: 'The device state.' },
    {
      name: 'IP',
      type: 'string',
      jsonPath: '.status.ipAddresses',
      description: 'The public IPv4 address.',
      value: (obj): TableCell => primaryAddress(obj) ?? null,
    },
    { name: 'Hardware', type: 'string', jsonPath: '.status.hardware', priority: 1, description: 'The bound Hardware.' },
    { name: 'OS', type: 'string', jsonPath: '.spec.operatingSystem', priority: 1, description: 'The operating system.' },
    { name: 'Progress', type: 'number', jsonPath: '.status.provisioningPercentage', priority: 1, description: 'Provisioning %.' },
  ],
  selectableFields: ['.spec.plan', '.spec.metro', '.status.state', '.status.hardware'],
  validate: (obj, old) => {
    const spec = obj.spec as DeviceSpec;
    const causes = [];
    if (!spec.metro && !spec.facility) causes.push(fieldRequired('spec.metro', 'either spec.metro or spec.facility is required'));
    if (spec.hostname !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(spec.hostname)) {
      causes.push(fieldInvalid('spec.hostname', spec.hostname, 'must be a hostname label: letters, digits and `-`, at most 63'));
    }
    if (spec.operatingSystem === 'custom_ipxe' && !spec.ipxeScriptUrl) {
      causes.push(fieldRequired('spec.ipxeScriptUrl', 'operatingSystem custom_ipxe needs an iPXE script URL'));
    }
    if (spec.ipxeScriptUrl) {
      const problem = scriptUrlProblem(spec.ipxeScriptUrl);
      if (problem) causes.push(fieldInvalid('spec.ipxeScriptUrl', spec.ipxeScriptUrl.slice(0, 200), problem));
    }
    if (spec.cloudConfigRef && spec.userData) {
      causes.push(fieldInvalid('spec.userData', '(omitted)', 'give either spec.userData or spec.cloudConfigRef, not both'));
    }
    if (spec.userData && Buffer.byteLength(spec.userData) > 64 * 1024) {
      causes.push(fieldInvalid('spec.userData', '(omitted)', 'must be at most 64 KiB'));
    }
    causes.push(...validateDeviceNetwork(spec.network));
    const action = obj.metadata.annotations?.[DeviceActionAnnotation];
    if (action !== undefined && !(DeviceActions as readonly string[]).includes(action.split('/')[0]!)) {
      causes.push(
        fieldInvalid(`metadata.annotations[${DeviceActionAnnotation}]`, action, `must be one of ${DeviceActions.join(', ')}, optionally followed by /<request id>`),
      );
    }
    if (old) {
      const before = old.spec as DeviceSpec;
      for (const f of ['metro', 'facility', 'plan', 'hardwareReservation'] as const) {
        if ((before[f] ?? '') !== (spec[f] ?? '')) causes.push(fieldInvalid(`spec.${f}`, spec[f], 'is immutable once the device exists'));
      }
    }
    return causes;
  },
  default: (obj) => {
    const spec = obj.spec as DeviceSpec;
    spec.hostname ??= obj.metadata.name;
    spec.ipAddresses ??= DefaultDeviceAddresses.map((a) => ({ ...a }));
    // The device controller's finalizer is there from the start (as an admission plugin would add it), so a
    // device deleted before the controller saw it still gets its machine wiped and its IPs released.
    const f = (obj.metadata.finalizers ??= []);
    if (!f.includes(DeviceFinalizerName)) f.push(DeviceFinalizerName);
    // The usage ledger closes the device's record at the moment its deletion was asked for.
    if (!f.includes(UsageFinalizerName)) f.push(UsageFinalizerName);
  },
};

/** The device's public IPv4 address (what the IP column and `kubectl get -o wide` show first). */
export function primaryAddress(obj: KubeObject): string | undefined {
  const ips = (obj.status as DeviceStatus | undefined)?.ipAddresses ?? [];
  return (ips.find((i) => i.family === 4 && i.public) ?? ips[0])?.address;
}
