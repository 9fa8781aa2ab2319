// CloudConfig: cloud-init user data composed from parts and from values read off other objects — "when this
// resource is ready, take a field of it, tie it into this cloud-config, and use the result to deploy that
// device". The cloudconfig controller resolves the values, renders the parts into one document (one part as
// itself, several as multipart/mixed MIME), and says in status whether it is Ready or what it waits for.
// Devices name it in `spec.cloudConfigRef`.
//
// Admission refuses what can be known wrong without the inputs: a cloud-config part that is not YAML or not
// valid against cloud-init's own schema, a shell part without `#!`, an unknown placeholder, a patch into a path
// that cannot be written. What depends on other objects (missing, not Ready, without the field) is a waiting
// reason in status instead, so the whole composition can be applied at once.
import { Type } from '@sinclair/typebox';
import { Conditions, KeyedList, StringEnum, Timestamp } from './common.js';
import {
  checkFieldWrite,
  defaultFilename,
  isShellScript,
  parseFieldPath,
  PartContentTypes,
  placeholdersIn,
  typeFromStartsWith,
  ValueNamePattern,
  type PartContentType,
} from './cloud-init/template.js';
import { validateCloudConfigSchema } from './cloud-init/schema.js';
import { parseYamlBounded } from './cloud-init/yaml.js';
import type { Condition, FieldCauseLike, KindDeclaration, KubeObject } from './types.js';
import { fieldDuplicate, fieldForbidden, fieldInvalid, fieldRequired, fieldTooLong } from './validation.js';

/** Kinds a `fieldRef` may read, in the CloudConfig's own namespace (a project never reads another's objects). */
export const FieldRefKinds = ['Device', 'IPReservation', 'SSHKey', 'ConfigMap', 'CloudConfig'] as const;
export type FieldRefKind = (typeof FieldRefKinds)[number];

export const CloudConfigEncodings = ['gzip+base64'] as const;

/** Bytes of one part's template; the bound that admission checks before parsing anything. */
export const MaxPartBytes = 128 * 1024;
export const MaxParts = 16;
export const MaxValues = 64;

export interface CloudConfigValueFrom {
  fieldRef?: { kind: FieldRefKind; name: string; fieldPath: string };
  secretKeyRef?: { name: string; key: string };
  configMapKeyRef?: { name: string; key: string };
  cloudConfigRef?: { name: string };
}

export interface CloudConfigValue {
  name: string;
  value?: string;
  valueFrom?: CloudConfigValueFrom;
}

export interface CloudConfigPatch {
  fromValue: string;
  toFieldPath: string;
}

export interface CloudConfigPart {
  contentType: PartContentType;
  content: string;
  filename?: string;
  patches?: CloudConfigPatch[];
}

export interface CloudConfigSpec {
  values?: CloudConfigValue[];
  parts: CloudConfigPart[];
  encoding?: (typeof CloudConfigEncodings)[number];
}

export interface CloudConfigStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** `text/cloud-config`, `text/x-shellscript`, … for one part; `multipart/mixed` for several. */
  contentType?: string;
  encoding?: string;
  /** The rendered document (base64 of its gzip with encoding gzip+base64), when not in a Secret. */
  userData?: string;
  /** The Secret (owned by this CloudConfig) holding the rendered document, when large or secret. */
  secretRef?: { name: string; key: string };
  /** `sha256:<hex>` of the rendered document before encoding. */
  hash?: string;
  /** Bytes a machine receives (after gzip, before base64). */
  size?: number;
  renderedAt?: string;
  /** Devices whose user data is an older render than `hash` (not reinstalled behind the user's back). */
  staleDevices?: string[];
}

const NameRef = (what: string) => Type.String({ minLength: 1, maxLength: 253, description: `The name of the ${what}, in this namespace.` });
const KeyRef = (what: string) =>
  Type.Object(
    { name: NameRef(what), key: Type.String({ minLength: 1, maxLength: 253, description: `The key in the ${what}'s data.` }) },
    { description: `A key of a ${what} in this namespace.` },
  );

const ValueSchema = Type.Object(
  {
    name: Type.String({
      pattern: ValueNamePattern,
      maxLength: 63,
      description: 'The placeholder name, upper case: `$(DB_IP)` in a part is replaced by the value.',
    }),
    value: Type.Optional(Type.String({ maxLength: 16384, description: 'A literal value.' })),
    valueFrom: Type.Optional(
      Type.Object(
        {
          fieldRef: Type.Optional(
            Type.Object(
              {
                kind: StringEnum(FieldRefKinds, { description: 'The kind of the object to read.' }),
                name: NameRef('object'),
                fieldPath: Type.String({
                  minLength: 1,
                  maxLength: 512,
                  description:
                    'The field to read, e.g. `status.ipAddresses[0].address` or ' +
                    '`status.ipAddresses[?(@.public==false)].address`. A Device is read only once it is Ready.',
                }),
              },
              { description: 'A field of an object in this namespace.' },
            ),
          ),
          secretKeyRef: Type.Optional(KeyRef('Secret')),
          configMapKeyRef: Type.Optional(KeyRef('ConfigMap')),
          cloudConfigRef: Type.Optional(
            Type.Object({ name: NameRef('CloudConfig') }, { description: 'The rendered document of another CloudConfig, once it is Ready.' }),
          ),
        },
        { description: 'Where the value comes from: exactly one of fieldRef, secretKeyRef, configMapKeyRef, cloudConfigRef.' },
      ),
    ),
  },
  { description: 'A named input: a literal value, or one resolved from another object.' },
);

const PatchSchema = Type.Object(
  {
    fromValue: Type.String({ pattern: ValueNamePattern, description: 'The name of a value.' }),
    toFieldPath: Type.String({
      minLength: 1,
      maxLength: 512,
      description: 'Where to set it in the part\'s YAML, e.g. `write_files[0].content`; missing maps and lists are created.',
    }),
  },
  { description: 'Sets a value at a path of a cloud-config part (Crossplane-style), as a YAML string: no quoting to get right.' },
);

const PartSchema = Type.Object(
  {
    contentType: StringEnum(PartContentTypes, { description: 'The part\'s MIME type, one cloud-init handles.' }),
    content: Type.String({
      description: 'The part: `#cloud-config` YAML, a script starting with `#!`, … `$(NAME)` placeholders are replaced; `$$(NAME)` stays `$(NAME)`.',
    }),
    filename: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'The MIME part\'s file name (cloud-init names scripts after it; default part-NNN).' }),
    ),
    patches: Type.Optional(Type.Array(PatchSchema, { maxItems: 64, description: 'Structured edits of a text/cloud-config part, after placeholders.' })),
  },
  { description: 'One part of the user data.' },
);

export const cloudConfigKind: KindDeclaration = {
  group: 'metalplane.dev',
  version: 'v1alpha1',
  kind: 'CloudConfig',
  plural: 'cloudconfigs',
  singular: 'cloudconfig',
  scope: 'Namespaced',
  shortNames: ['cc'],
  categories: ['metalplane'],
  statusSubresource: true,
  description:
    'CloudConfig is cloud-init user data composed of parts (cloud-config, scripts, …) and of values read from ' +
    'other objects of the project (a Device\'s IP once it is Ready, a Secret key, another CloudConfig). It is ' +
    'Ready when every value resolved and the document rendered; devices name it in spec.cloudConfigRef.',
  schema: Type.Object({
    spec: Type.Object(
      {
        values: Type.Optional(KeyedList(ValueSchema, 'name', 'The inputs, by placeholder name.')),
        parts: Type.Array(PartSchema, { minItems: 1, maxItems: MaxParts, description: 'The parts, rendered in order into one document.' }),
        encoding: Type.Optional(
          StringEnum(CloudConfigEncodings, { description: 'gzip+base64: machines receive the document gzipped (cloud-init unzips it); status holds it base64.' }),
        ),
      },
      { description: 'CloudConfigSpec is the template and its inputs.' },
    ),
    status: Type.Optional(
      Type.Object(
        {
          observedGeneration: Type.Optional(Type.Integer({ format: 'int64', description: 'The metadata.generation last rendered.' })),
          conditions: Type.Optional(Conditions('Ready (rendered; or WaitingForInputs and what for) and Synced.')),
          contentType: Type.Optional(Type.String({ description: 'The rendered document\'s type: a part\'s own, or multipart/mixed.' })),
          encoding: Type.Optional(Type.String({ description: 'The encoding of userData, if any.' })),
          userData: Type.Optional(Type.String({ description: 'The rendered document, when it is small and carries no Secret value.' })),
          secretRef: Type.Optional(
            Type.Object(
              { name: Type.String({ description: 'The Secret.' }), key: Type.String({ description: 'Its key.' }) },
              { description: 'The Secret this CloudConfig owns that holds the rendered document.' },
            ),
          ),
          hash: Type.Optional(Type.String({ description: '`sha256:<hex>` of the rendered document (before encoding).' })),
          size: Type.Optional(Type.Integer({ description: 'Bytes a machine receives.' })),
          renderedAt: Type.Optional(Timestamp('When the document last changed.')),
          staleDevices: Type.Optional(
            Type.Array(Type.String(), { description: 'Devices provisioned with an older render (reinstall them to apply this one).' }),
          ),
        },
        { description: 'CloudConfigStatus is the rendered document and whether it is ready.' },
      ),
    ),
  }),
  printerColumns: [
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Rendered and ready to use.' },
    { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', description: 'Why (not) ready.' },
    { name: 'Type', type: 'string', jsonPath: '.status.contentType', priority: 1, description: 'The rendered document\'s type.' },
    { name: 'Size', type: 'integer', jsonPath: '.status.size', description: 'Bytes a machine receives.' },
    { name: 'Hash', type: 'string', jsonPath: '.status.hash', priority: 1, description: 'The render\'s hash.' },
  ],
  validate: (obj) => validateCloudConfig(obj),
};

/** Admission's checks beyond the schema, each naming the field that is wrong. */
export function validateCloudConfig(obj: KubeObject): FieldCauseLike[] {
  const spec = obj.spec as CloudConfigSpec;
  const causes: FieldCauseLike[] = [];
  const values = spec.values ?? [];
  const declared = new Set<string>();
  if (values.length > MaxValues) causes.push(fieldInvalid('spec.values', `${values.length} values`, `at most ${MaxValues}`));
  values.forEach((v, i) => {
    const at = `spec.values[${i}]`;
    if (declared.has(v.name)) causes.push(fieldDuplicate(`${at}.name`, v.name));
    declared.add(v.name);
    const sources = v.valueFrom ? (Object.keys(v.valueFrom) as Array<keyof CloudConfigValueFrom>).filter((k) => v.valueFrom![k] !== undefined) : [];
    if ((v.value !== undefined) === (v.valueFrom !== undefined)) {
      causes.push(fieldRequired(at, 'exactly one of value and valueFrom'));
    } else if (v.valueFrom && sources.length !== 1) {
      causes.push(
        fieldInvalid(`${at}.valueFrom`, sources, 'must name exactly one of fieldRef, secretKeyRef, configMapKeyRef, cloudConfigRef'),
      );
    }
    const f = v.valueFrom?.fieldRef;
    if (f) {
      const p = parseFieldPath(f.fieldPath, { filters: true });
      if (!p.ok) causes.push(fieldInvalid(`${at}.valueFrom.fieldRef.fieldPath`, f.fieldPath, p.message));
      if (f.kind === 'CloudConfig' && f.name === obj.metadata.name) {
        causes.push(fieldForbidden(`${at}.valueFrom.fieldRef`, 'a CloudConfig cannot read itself'));
      }
    }
    if (v.valueFrom?.cloudConfigRef?.name === obj.metadata.name) {
      causes.push(fieldForbidden(`${at}.valueFrom.cloudConfigRef`, 'a CloudConfig cannot include its own output'));
    }
  });
  const declaredList = [...declared].join(', ') || 'none';
  const filenames = new Set<string>();
  spec.parts.forEach((part, i) => {
    const at = `spec.parts[${i}]`;
    // cloud-init saves scripts under their part's file name: two of one name would overwrite each other.
    const filename = part.filename ?? defaultFilename(i);
    if (filenames.has(filename)) causes.push(fieldDuplicate(`${at}.filename`, filename));
    filenames.add(filename);
    const bytes = Buffer.byteLength(part.content);
    if (bytes > MaxPartBytes) {
      causes.push(fieldTooLong(`${at}.content`, MaxPartBytes));
      return;
    }
    for (const name of placeholdersIn(part.content)) {
      if (!declared.has(name)) {
        causes.push(
          fieldInvalid(`${at}.content`, `$(${name})`, `is not a declared value (declared: ${declaredList}); write $$(${name}) for a literal $(${name})`),
        );
      }
    }
    if (isShellScript(part.contentType) && !part.content.startsWith('#!')) {
      causes.push({ field: at, reason: 'FieldValueInvalid', message: `a ${part.contentType} part must start with #! (e.g. #!/bin/sh)` });
    }
    if (part.patches?.length && part.contentType !== 'text/cloud-config') {
      causes.push(fieldForbidden(`${at}.patches`, 'patches edit YAML: only a text/cloud-config part has them'));
    }
    if (part.contentType === 'text/cloud-config') causes.push(...validateCloudConfigPart(part, at, declared, declaredList));
  });
  return causes;
}

/** A cloud-config part: its `#cloud-config` header, YAML, cloud-init's schema and its patches' paths. */
function validateCloudConfigPart(part: CloudConfigPart, at: string, declared: ReadonlySet<string>, declaredList: string): FieldCauseLike[] {
  const causes: FieldCauseLike[] = [];
  if (typeFromStartsWith(part.content) !== 'text/cloud-config') {
    return [{ field: at, reason: 'FieldValueInvalid', message: 'a text/cloud-config part must start with the line #cloud-config' }];
  }
  const parsed = parseYamlBounded(part.content);
  if (!parsed.ok) return [{ field: at, reason: 'FieldValueInvalid', message: `the cloud-config ${parsed.message}` }];
  for (const m of validateCloudConfigSchema(parsed.value)) causes.push({ field: at, reason: 'FieldValueInvalid', message: m });
  (part.patches ?? []).forEach((p, j) => {
    const pat = `${at}.patches[${j}]`;
    if (!declared.has(p.fromValue)) causes.push(fieldInvalid(`${pat}.fromValue`, p.fromValue, `is not a declared value (declared: ${declaredList})`));
    const path = parseFieldPath(p.toFieldPath);
    if (!path.ok) causes.push(fieldInvalid(`${pat}.toFieldPath`, p.toFieldPath, path.message));
    else {
      const problem = checkFieldWrite(parsed.value, path.segments);
      if (problem) causes.push(fieldInvalid(`${pat}.toFieldPath`, p.toFieldPath, problem));
    }
  });
  return causes;
}
