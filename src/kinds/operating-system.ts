// OperatingSystem: an installable image and the provisioning workflow that installs it, e.g. `ubuntu_24_04`
// with the `ubuntu-install` workflow template. `custom_ipxe` is the special one: no image, the device boots
// the user's iPXE script. Cluster-scoped catalog data. Slugs use `_`, which names cannot, so the object name is
// the slug with `-` (`ubuntu-24-04`) and the slug itself is spec.slug.
import { Type } from '@sinclair/typebox';
import { Conditions, StringEnum } from './common.js';
import type { KindDeclaration } from './types.js';
import { fieldInvalid, fieldRequired } from './validation.js';

/** The object name of an operating system slug: `ubuntu_24_04` → `ubuntu-24-04`. */
export function operatingSystemName(slug: string): string {
  return slug.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
}

/** Whether a `provisionableOn` list (plan slugs or patterns with `*`, e.g. `c3.*`) admits `plan`. */
export function isProvisionableOn(provisionableOn: readonly string[], plan: string): boolean {
  return provisionableOn.some((p) => new RegExp('^' + p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$').test(plan));
}

export const operatingSystemKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'OperatingSystem',
  plural: 'operatingsystems',
  singular: 'operatingsystem',
  scope: 'Cluster',
  shortNames: ['os'],
  categories: ['metalplane', 'catalog'],
  statusSubresource: true,
  description:
    'OperatingSystem is an installable image and the provisioning workflow that installs it, e.g. ' +
    '`ubuntu_24_04`. Devices name it by slug. The object name is the slug with `_` replaced by `-`.',
  schema: Type.Object({
    spec: Type.Object(
      {
        slug: Type.String({
          pattern: '^[a-z0-9][a-z0-9_.-]*$',
          description: 'The slug devices use to ask for this OS, e.g. `ubuntu_24_04`, `custom_ipxe`.',
        }),
        name: Type.String({ description: 'The display name, e.g. `Ubuntu 24.04 LTS`.' }),
        distro: Type.String({ description: 'The distribution, e.g. `ubuntu`, `debian`, `rocky`, `flatcar`.' }),
        distroLabel: Type.Optional(Type.String({ description: 'The display name of the distribution, e.g. `Ubuntu`.' })),
        version: Type.String({ description: 'The distribution version, e.g. `24.04`, `12`, `stable`.' }),
        family: Type.Optional(
          Type.String({ description: 'The OS family the installer and cloud-init treat alike, e.g. `debian`, `redhat`, `flatcar`.' }),
        ),
        provisionableOn: Type.Array(Type.String(), {
          description:
            'Plans this OS can be installed on: plan slugs (`c3.small.x86`) or patterns with `*` ' +
            '(`c3.*`, `*.x86`).',
        }),
        defaultUser: Type.Optional(Type.String({ default: 'root', description: 'The user the SSH keys are installed for.' })),
        licensed: Type.Optional(Type.Boolean({ description: 'A licensed OS: priced according to `pricing`.' })),
        preinstallable: Type.Optional(
          Type.Boolean({ description: 'Machines may be kept preinstalled with this OS to shorten provisioning.' }),
        ),
        pricing: Type.Optional(
          Type.Object(
            {
              hour: Type.Optional(Type.Number({ minimum: 0, format: 'double', description: 'License price in USD per hour.' })),
              perCore: Type.Optional(Type.Boolean({ description: 'The hourly price is multiplied by the number of cores.' })),
            },
            { description: 'License price on top of the plan price.' },
          ),
        ),
        image: Type.Optional(
          Type.Object(
            {
              url: Type.String({ description: 'Where the agent streams the image from (http, https).' }),
              checksum: Type.Optional(
                Type.String({
                  pattern: '^(sha256:[0-9a-fA-F]{64}|sha512:[0-9a-fA-F]{128})$',
                  description: 'Checksum of the image as `<algorithm>:<hex>`: `sha256:` and 64 hex digits or `sha512:` and 128. The agent verifies the bytes it wrote against it.',
                }),
              ),
              format: Type.Optional(
                StringEnum(['raw', 'qcow2', 'raw.gz', 'raw.bz2', 'raw.xz', 'raw.zst', 'tar.gz'], {
                  description: 'The image format: raw (optionally compressed), qcow2 or a root-filesystem tarball.',
                }),
              ),
            },
            { description: 'The disk image written by the provisioning workflow. Absent for custom iPXE.' },
          ),
        ),
        workflow: Type.Optional(
          Type.String({ description: 'The name of the workflow template that installs this OS, e.g. `ubuntu-install`.' }),
        ),
        customIpxe: Type.Optional(
          Type.Boolean({
            description: 'If true, nothing is installed: the device boots the iPXE script given in its ipxeScriptUrl or user data.',
          }),
        ),
      },
      { description: 'OperatingSystemSpec describes the OS and how to install it.' },
    ),
    status: Type.Optional(
      Type.Object(
        {
          observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last reconciled.' })),
          imageCached: Type.Optional(Type.Boolean({ description: 'The image is cached by the boot service.' })),
          conditions: Type.Optional(Conditions()),
        },
        { description: 'OperatingSystemStatus is what the controllers observed about the OS.' },
      ),
    ),
  }),
  printerColumns: [
    { name: 'Slug', type: 'string', jsonPath: '.spec.slug', description: 'The slug devices use.' },
    { name: 'Distro', type: 'string', jsonPath: '.spec.distro', description: 'The distribution.' },
    { name: 'Version', type: 'string', jsonPath: '.spec.version', description: 'The distribution version.' },
    { name: 'Family', type: 'string', jsonPath: '.spec.family', description: 'The OS family.' },
    {
      name: 'Provisionable-On',
      type: 'string',
      jsonPath: '.spec.provisionableOn',
      priority: 1,
      description: 'Plans (or patterns) the OS installs on.',
    },
  ],
  selectableFields: ['.spec.slug', '.spec.distro', '.spec.family'],
  validate: (obj) => {
    const spec = obj.spec as { slug?: string; customIpxe?: boolean; image?: unknown; workflow?: string };
    const causes = [];
    if (spec.slug && obj.metadata.name && operatingSystemName(spec.slug) !== obj.metadata.name) {
      causes.push(
        fieldInvalid('metadata.name', obj.metadata.name, `must be ${JSON.stringify(operatingSystemName(spec.slug))} for slug ${JSON.stringify(spec.slug)}`),
      );
    }
    if (!spec.customIpxe && !spec.image) {
      causes.push(fieldRequired('spec.image', 'an image is required unless customIpxe is true'));
    }
    if (!spec.customIpxe && !spec.workflow) {
      causes.push(fieldRequired('spec.workflow', 'a workflow template is required unless customIpxe is true'));
    }
    return causes;
  },
};
