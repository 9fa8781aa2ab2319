// Kube's NamespaceLifecycle admission: a namespaced object can be created only in a namespace that exists and
// is not being deleted. Which kind holds the namespaces is the declaration's `isNamespace`; a kind whose
// strategy allows it may still create what the namespace's own clean-up needs.
import type { KindDeclaration, KubeObject } from '../../kinds/types.js';
import { keyFor, type KindRegistry } from '../../kinds/index.js';
import { ApiError } from '../../lib/errors.js';
import type { ObjectCodec } from './codec.js';
import type { CurrentState } from './current-state.js';

export class NamespaceAdmission {
  private readonly namespaceKind: KindDeclaration | undefined;

  constructor(
    kinds: KindRegistry,
    private readonly current: CurrentState,
    private readonly codec: ObjectCodec,
  ) {
    this.namespaceKind = kinds.all().find((k) => k.isNamespace);
  }

  async admit(kind: KindDeclaration, namespace: string, obj: KubeObject): Promise<void> {
    if (!this.namespaceKind) return;
    const kv = await this.current.get(keyFor(this.namespaceKind, undefined, namespace));
    if (!kv) throw ApiError.notFound(this.namespaceKind.plural, namespace, this.namespaceKind.group);
    if (this.codec.decode(kv).metadata.deletionTimestamp === undefined) return;
    if (kind.strategy?.allowCreateInTerminatingNamespace?.(obj)) return;
    throw new ApiError(403, 'Forbidden', `${kind.plural} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, {
      name: namespace,
      kind: kind.plural,
      group: kind.group,
      causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
    });
  }
}
