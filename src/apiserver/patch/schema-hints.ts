// What the patch and apply engine needs to know about a kind's shape: how each list merges (atomic, set, or
// map keyed by some fields), whether a map is atomic, the strategic-merge-patch strategy of a field, and
// whether an object member is a declared property or an entry of a free-form map. It is derived from the
// kind's JSON Schema (TypeBox output) and its Kubernetes extensions, the way kube-apiserver derives its
// structured-merge-diff schema from OpenAPI. `metadata` is always ObjectMeta, whatever the schema says.

export type ListType = 'atomic' | 'set' | 'map';
export type MapType = 'atomic' | 'granular';

/** Hints for one node of the object tree; walk with `field()` and `items()`. */
export interface SchemaHints {
  /** How a list here merges under server-side apply. Unknown lists are atomic. */
  readonly listType: ListType;
  /** The key fields of a `map` list (sorted as declared). */
  readonly listMapKeys: readonly string[];
  /** Unknown objects are granular (merged member by member). */
  readonly mapType: MapType;
  /** `x-kubernetes-patch-strategy`, split on commas (e.g. `merge`, `retainKeys`, `replace`). */
  readonly patchStrategies: readonly string[];
  /** `x-kubernetes-patch-merge-key`: the field identifying elements of a `merge` list of objects. */
  readonly patchMergeKey: string | undefined;
  /** Hints for the member `name` of an object here. */
  field(name: string): SchemaHints;
  /**
   * Whether `name` is a declared property (true) or an entry of a free-form map (`additionalProperties`,
   * `patternProperties`). Members of objects the schema says nothing about count as declared.
   */
  isNamedField(name: string): boolean;
  /** Hints for the elements of a list here. */
  items(): SchemaHints;
}

type Schema = Record<string, unknown>;

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** ObjectMeta as Kubernetes declares it, with the list and patch semantics kubectl relies on. */
const objectMetaSchema: Schema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    generateName: { type: 'string' },
    namespace: { type: 'string' },
    selfLink: { type: 'string' },
    uid: { type: 'string' },
    resourceVersion: { type: 'string' },
    generation: { type: 'integer' },
    creationTimestamp: { type: 'string' },
    deletionTimestamp: { type: 'string' },
    deletionGracePeriodSeconds: { type: 'integer' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    finalizers: {
      type: 'array',
      items: { type: 'string' },
      'x-kubernetes-list-type': 'set',
      'x-kubernetes-patch-strategy': 'merge',
    },
    ownerReferences: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          apiVersion: { type: 'string' },
          kind: { type: 'string' },
          name: { type: 'string' },
          uid: { type: 'string' },
          controller: { type: 'boolean' },
          blockOwnerDeletion: { type: 'boolean' },
        },
      },
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['uid'],
      'x-kubernetes-patch-strategy': 'merge',
      'x-kubernetes-patch-merge-key': 'uid',
    },
    managedFields: { type: 'array', items: { type: 'object' }, 'x-kubernetes-list-type': 'atomic' },
  },
};

class Resolver {
  private readonly nodes = new Map<string, SchemaNode>();
  private readonly cache = new WeakMap<Schema, SchemaNode>();
  constructor(private readonly root: Schema) {}

  /** One node for a set of schema fragments (allOf/anyOf/oneOf branches and $refs flattened). */
  node(schemas: readonly Schema[]): SchemaHints {
    const flat: Schema[] = [];
    for (const s of schemas) this.flatten(s, flat, 0);
    if (flat.length === 0) return UNKNOWN;
    if (flat.length === 1) {
      const s = flat[0]!;
      let n = this.cache.get(s);
      if (!n) {
        n = new SchemaNode(this, flat);
        this.cache.set(s, n);
      }
      return n;
    }
    return new SchemaNode(this, flat);
  }

  private flatten(s: Schema, out: Schema[], depth: number): void {
    if (depth > 32 || out.includes(s)) return;
    out.push(s);
    if (typeof s.$ref === 'string') {
      const target = this.resolveRef(s.$ref);
      if (target) this.flatten(target, out, depth + 1);
    }
    for (const k of ['allOf', 'anyOf', 'oneOf'] as const) {
      const branches = s[k];
      if (Array.isArray(branches)) for (const b of branches) if (isSchema(b)) this.flatten(b, out, depth + 1);
    }
  }

  private resolveRef(ref: string): Schema | undefined {
    if (ref.startsWith('#/')) {
      let cur: unknown = this.root;
      for (const raw of ref.slice(2).split('/')) {
        const token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
        if (!isSchema(cur)) return undefined;
        cur = cur[token];
      }
      return isSchema(cur) ? cur : undefined;
    }
    // TypeBox Type.Ref(id) points at a schema carrying that $id somewhere under the root.
    return findById(this.root, ref, 0);
  }

  metadata(): SchemaHints {
    let n = this.nodes.get('metadata');
    if (!n) {
      n = new SchemaNode(this, [objectMetaSchema]);
      this.nodes.set('metadata', n);
    }
    return n;
  }
}

function findById(s: unknown, id: string, depth: number): Schema | undefined {
  if (!isSchema(s) || depth > 16) return undefined;
  if (s.$id === id) return s;
  for (const v of Object.values(s)) {
    const children = Array.isArray(v) ? v : [v];
    for (const c of children) {
      const found = findById(c, id, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

class SchemaNode implements SchemaHints {
  readonly listType: ListType;
  readonly listMapKeys: readonly string[];
  readonly mapType: MapType;
  readonly patchStrategies: readonly string[];
  readonly patchMergeKey: string | undefined;
  private readonly properties = new Map<string, Schema[]>();
  private readonly freeForm: Schema[] = [];
  private readonly hasFreeForm: boolean;
  private readonly itemSchemas: Schema[] = [];
  private readonly children = new Map<string, SchemaHints>();
  private itemsNode: SchemaHints | undefined;

  constructor(
    private readonly resolver: Resolver,
    fragments: readonly Schema[],
  ) {
    let hasFreeForm = false;
    for (const s of fragments) {
      if (isSchema(s.properties)) {
        for (const [name, p] of Object.entries(s.properties)) {
          if (!isSchema(p)) continue;
          const list = this.properties.get(name) ?? [];
          list.push(p);
          this.properties.set(name, list);
        }
      }
      if (isSchema(s.additionalProperties)) {
        this.freeForm.push(s.additionalProperties);
        hasFreeForm = true;
      } else if (s.additionalProperties === true) {
        hasFreeForm = true;
      }
      if (isSchema(s.patternProperties)) {
        for (const p of Object.values(s.patternProperties)) if (isSchema(p)) this.freeForm.push(p);
        hasFreeForm = true;
      }
      if (isSchema(s.items)) this.itemSchemas.push(s.items);
      else if (Array.isArray(s.items)) for (const i of s.items) if (isSchema(i)) this.itemSchemas.push(i);
    }
    this.hasFreeForm = hasFreeForm;

    const ext = <T>(name: string, ok: (v: unknown) => v is T): T | undefined => {
      for (const s of fragments) if (ok(s[name])) return s[name] as T;
      return undefined;
    };
    const isString = (v: unknown): v is string => typeof v === 'string';
    const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

    this.patchStrategies = (ext('x-kubernetes-patch-strategy', isString) ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    this.patchMergeKey = ext('x-kubernetes-patch-merge-key', isString);
    const declaredListType = ext('x-kubernetes-list-type', isString);
    let keys = ext('x-kubernetes-list-map-keys', isStringList) ?? [];
    let listType: ListType = 'atomic';
    if (declaredListType === 'set' || declaredListType === 'atomic') {
      listType = declaredListType;
    } else if (declaredListType === 'map') {
      if (keys.length === 0 && this.patchMergeKey) keys = [this.patchMergeKey];
      listType = keys.length > 0 ? 'map' : 'atomic';
    } else if (this.patchStrategies.includes('merge')) {
      // Built-in kinds carry only the patch strategy; kube-apiserver's apply schema reads it the same way.
      if (this.patchMergeKey) {
        listType = 'map';
        keys = [this.patchMergeKey];
      } else {
        listType = 'set';
      }
    }
    this.listType = listType;
    this.listMapKeys = listType === 'map' ? keys : [];
    this.mapType = ext('x-kubernetes-map-type', isString) === 'atomic' ? 'atomic' : 'granular';
  }

  field(name: string): SchemaHints {
    let n = this.children.get(name);
    if (!n) {
      const declared = this.properties.get(name);
      n = this.resolver.node(declared ?? this.freeForm);
      this.children.set(name, n);
    }
    return n;
  }

  isNamedField(name: string): boolean {
    return this.properties.has(name) || !this.hasFreeForm;
  }

  items(): SchemaHints {
    this.itemsNode ??= this.resolver.node(this.itemSchemas);
    return this.itemsNode;
  }
}

/** Nothing known: lists atomic, objects granular, every member declared. */
const UNKNOWN: SchemaHints = {
  listType: 'atomic',
  listMapKeys: [],
  mapType: 'granular',
  patchStrategies: [],
  patchMergeKey: undefined,
  field: () => UNKNOWN,
  isNamedField: () => true,
  items: () => UNKNOWN,
};

/** The root of an object: the kind's schema, plus `apiVersion`, `kind` and Kubernetes' ObjectMeta. */
class ObjectRoot implements SchemaHints {
  readonly listType: ListType = 'atomic';
  readonly listMapKeys: readonly string[] = [];
  readonly mapType: MapType = 'granular';
  readonly patchStrategies: readonly string[] = [];
  readonly patchMergeKey = undefined;
  constructor(
    private readonly resolver: Resolver,
    private readonly body: SchemaHints,
  ) {}
  field(name: string): SchemaHints {
    if (name === 'metadata') return this.resolver.metadata();
    if (name === 'apiVersion' || name === 'kind') return UNKNOWN;
    return this.body.field(name);
  }
  isNamedField(name: string): boolean {
    return name === 'metadata' || name === 'apiVersion' || name === 'kind' || this.body.isNamedField(name);
  }
  items(): SchemaHints {
    return UNKNOWN;
  }
}

/**
 * Hints for a whole object from its kind's JSON Schema (the object's own schema, with or without
 * apiVersion/kind/metadata). Walks properties, items, additionalProperties/patternProperties,
 * allOf/anyOf/oneOf and local $refs.
 */
export function schemaHintsFrom(jsonSchema: object): SchemaHints {
  const root = jsonSchema as Schema;
  const resolver = new Resolver(root);
  return new ObjectRoot(resolver, resolver.node([root]));
}

/** Hints when the kind's schema is unknown: only ObjectMeta's semantics apply. */
export const defaultSchemaHints: SchemaHints = schemaHintsFrom({});
