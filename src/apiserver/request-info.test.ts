// parseRequestPath: what a kube API path addresses, with its segments percent-decoded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isApiError } from '../lib/errors.js';
import { parseRequestPath, type NamespacePaths, type RequestInfo } from './request-info.js';

const ns: NamespacePaths = { resource: 'namespaces', group: '', subresources: new Set(['status', 'finalize']) };

describe('parseRequestPath', () => {
  const cases: Array<{ name: string; path: string; want: RequestInfo }> = [
    { name: 'a namespaced collection', path: '/api/v1/namespaces/default/configmaps', want: { type: 'resource', group: '', version: 'v1', resource: 'configmaps', namespace: 'default', name: undefined, subresource: undefined } },
    { name: 'a query is not part of the path', path: '/api/v1/namespaces/default/configmaps?watch=1', want: { type: 'resource', group: '', version: 'v1', resource: 'configmaps', namespace: 'default', name: undefined, subresource: undefined } },
    { name: 'percent-encoded name', path: '/apis/metalplane.dev/v1alpha1/plans/c3%2Esmall%3Ax86', want: { type: 'resource', group: 'metalplane.dev', version: 'v1alpha1', resource: 'plans', name: 'c3.small:x86', subresource: undefined } },
    { name: 'a namespace subresource', path: '/api/v1/namespaces/a/finalize', want: { type: 'resource', group: '', version: 'v1', resource: 'namespaces', name: 'a', subresource: 'finalize' } },
    { name: 'discovery', path: '/apis/metalplane.dev', want: { type: 'discovery', legacy: false, group: 'metalplane.dev' } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(parseRequestPath(c.path, ns), c.want));
  }

  it('refuses bad percent-encoding with a 400 naming the segment', () => {
    assert.throws(
      () => parseRequestPath('/api/v1/namespaces/default/configmaps/a%zz', ns),
      (e: unknown) => isApiError(e) && e.code === 400 && /"a%zz": bad percent-encoding/.test(e.message),
    );
  });
});
