import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventKind, planKind } from '../kinds/index.js';
import type { KubeObject } from '../kinds/types.js';
import { ApiError } from '../lib/errors.js';
import { labelSelectorFromObject, parseFieldSelector, parseLabelSelector } from './selectors.js';

const labels = { app: 'web', tier: 'front', size: '3', empty: '' };

test('label selectors: parse and match', () => {
  const cases: [selector: string, matches: boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app in (web,db)', true],
    ['app in (db)', false],
    ['app notin (db, cache)', true],
    ['app notin (web)', false],
    ['missing notin (web)', true],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['size>2', true],
    ['size>3', false],
    ['size<4', true],
    ['app>1', false],
    ['empty=', true],
    ['app=web,tier=front', true],
    ['app=web, tier=back', false],
    ['example.com/role in (a)', false],
  ];
  for (const [selector, want] of cases) assert.equal(parseLabelSelector(selector).matches(labels), want, selector);
  assert.equal(parseLabelSelector('app=web').matches(undefined), false);
  assert.equal(parseLabelSelector('!app').matches(undefined), true);
});

test('label selectors: errors are 400 BadRequest with kube wording', () => {
  const cases: [selector: string, message: string][] = [
    ['a b', "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"],
    ['a in x', "unable to parse requirement: found 'x', expected: '('"],
    ['a in (x y)', "unable to parse requirement: found 'y', expected: ',' or ')'"],
    ['=b', "found '=', expected: !, identifier, or 'end of string'"],
    ['a=b c', "found 'c', expected: ',' or 'end of string'"],
    ['a,', "found '', expected: identifier after ','"],
    ['a>x', "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"],
    ['-a=b', 'unable to parse requirement: key: Invalid value: "-a": name part must consist of'],
    ['a=-b', 'unable to parse requirement: values[0]: Invalid value: "-b": a valid label must be'],
  ];
  for (const [selector, message] of cases) {
    assert.throws(
      () => parseLabelSelector(selector),
      (e: unknown) => e instanceof ApiError && e.code === 400 && e.reason === 'BadRequest' && e.message.startsWith(message),
      selector,
    );
  }
});

test('label selectors round-trip through toString and from metav1.LabelSelector', () => {
  assert.equal(parseLabelSelector('a = b , c in (x, y),!d,e>3').toString(), 'a=b,c in (x,y),!d,e>3');
  const sel = labelSelectorFromObject({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }] });
  assert.equal(sel.matches(labels), true);
  assert.equal(sel.matches({ ...labels, tier: 'back' }), false);
});

const event: KubeObject = {
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: 'a,b', namespace: 'p1' },
  involvedObject: { kind: 'Device', name: 'dev1' },
  source: { component: 'device-controller' },
  type: 'Warning',
  count: 2,
};

test('field selectors: metadata and selectable fields', () => {
  const cases: [selector: string, matches: boolean][] = [
    ['', true],
    ['metadata.namespace=p1', true],
    ['metadata.namespace!=p1', false],
    ['metadata.name=a\\,b', true],
    ['involvedObject.kind=Device,type==Warning', true],
    ['involvedObject.kind=Device,type=Normal', false],
    ['source=device-controller', true],
    ['reason=', true],
    ['reason!=', false],
  ];
  for (const [selector, want] of cases) assert.equal(parseFieldSelector(selector, eventKind).matches(event), want, selector);
  assert.equal(parseFieldSelector('metadata.name=c3.small.x86', planKind).exactValue('metadata.name'), 'c3.small.x86');
});

test('field selectors: errors', () => {
  const cases: [selector: string, message: string][] = [
    ['spec.foo=x', 'field label not supported: spec.foo'],
    ['foo', "invalid selector: 'foo'; can't understand 'foo'"],
    ['metadata.name=a\\x', 'invalid field selector: invalid escape sequence'],
    ['spec.plan=x', 'field label not supported: spec.plan'],
  ];
  for (const [selector, message] of cases) {
    assert.throws(
      () => parseFieldSelector(selector, eventKind),
      (e: unknown) => e instanceof ApiError && e.code === 400 && e.message === message,
      selector,
    );
  }
  assert.equal(parseFieldSelector('spec.class=c3.small.x86', planKind).requirements.length, 1);
});
