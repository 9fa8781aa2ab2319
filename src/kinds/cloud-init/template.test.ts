import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkFieldWrite, getField, parseFieldPath, placeholdersIn, substitutePlaceholders, typeFromStartsWith } from './template.js';
import { parseYamlBounded } from './yaml.js';

test('placeholders: $(NAME) is replaced, $$(NAME) is a literal, lower case and other $ are left alone', () => {
  const values = new Map([
    ['DB_IP', '10.0.0.5'],
    ['PORT', '5432'],
  ]);
  const cases: Array<[string, string, string, string[]]> = [
    ['one', 'DB_IP=$(DB_IP)', 'DB_IP=10.0.0.5', []],
    ['twice and two names', '$(DB_IP):$(PORT) $(DB_IP)', '10.0.0.5:5432 10.0.0.5', []],
    ['escaped', 'echo $$(DB_IP)', 'echo $(DB_IP)', []],
    ['escaped unknown', '$$(NOPE)', '$(NOPE)', []],
    ['shell command substitution', 'h=$(hostname) pid=$$ x=${HOME}', 'h=$(hostname) pid=$$ x=${HOME}', []],
    ['unknown stays and is reported', 'a $(NOPE) b', 'a $(NOPE) b', ['NOPE']],
    ['a value is not expanded again', '$(A)', '$(DB_IP)', []],
  ];
  const withA = new Map([...values, ['A', '$(DB_IP)']]);
  for (const [name, input, want, missing] of cases) {
    const r = substitutePlaceholders(input, withA);
    assert.equal(r.text, want, name);
    assert.deepEqual(r.missing, missing, name);
  }
  assert.deepEqual(placeholdersIn('$(A) $$(B) $(C) $(A) $(lower)'), ['A', 'C']);
});

test('field paths: parse, read (with filters) and check writes', () => {
  const dev = {
    status: {
      ipAddresses: [
        { address: '147.75.1.2', family: 4, public: true },
        { address: '10.1.0.2', family: 4, public: false },
      ],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
    data: { 'a.b': 'dotted' },
  };
  const reads: Array<[string, unknown]> = [
    ['status.ipAddresses[0].address', '147.75.1.2'],
    ['status.ipAddresses[?(@.public==false)].address', '10.1.0.2'],
    ["status.conditions[?(@.type=='Ready')].status", 'True'],
    ['data["a.b"]', 'dotted'],
    ['status.ipAddresses[1]', { address: '10.1.0.2', family: 4, public: false }],
  ];
  for (const [path, want] of reads) {
    const p = parseFieldPath(path, { filters: true });
    assert.ok(p.ok, path);
    const r = getField(dev, p.segments);
    assert.deepEqual(r, { found: true, value: want }, path);
  }
  const misses: Array<[string, string]> = [
    ['status.ipAddresses[5].address', 'status.ipAddresses[5]'],
    ['status.hostname', 'status.hostname'],
    ['status.ipAddresses[?(@.family==6)].address', 'status.ipAddresses[?(@.family==6)]'],
  ];
  for (const [path, missing] of misses) {
    const p = parseFieldPath(path, { filters: true });
    assert.ok(p.ok, path);
    assert.deepEqual(getField(dev, p.segments), { found: false, missing }, path);
  }
  for (const bad of ['', 'a..b', 'a[', 'a[x]', '.a', 'a[?(@.x>1)]', 'a b']) {
    assert.equal(parseFieldPath(bad, { filters: true }).ok, false, bad);
  }
  assert.equal(parseFieldPath('a[?(@.x==1)]').ok, false, 'a filter is for reading only');

  const doc = { write_files: [{ path: '/x' }], runcmd: 'not a list' };
  const writes: Array<[string, string | undefined]> = [
    ['write_files[0].content', undefined],
    ['write_files[1].path', undefined],
    ['new.nested[0].key', undefined],
    ['write_files[3].path', 'write_files has 1 items: index 3 would leave a gap'],
    ['runcmd[0]', 'runcmd is a string, not a list'],
    ['write_files.path', 'write_files is a list, not a mapping'],
  ];
  for (const [path, want] of writes) {
    const p = parseFieldPath(path);
    assert.ok(p.ok, path);
    assert.equal(checkFieldWrite(doc, p.segments), want, path);
  }
});

test('cloud-init recognizes a document by its first line, longest prefix first', () => {
  const cases: Array<[string, string | undefined]> = [
    ['#cloud-config\na: 1', 'text/cloud-config'],
    ['  #Cloud-Config\n', 'text/cloud-config'],
    ['#cloud-config-archive\n', 'text/cloud-config-archive'],
    ['#!/bin/sh\n', 'text/x-shellscript'],
    ['#include-once\nhttp://x', 'text/x-include-once-url'],
    ['#include\nhttp://x', 'text/x-include-url'],
    ['## template: jinja\n#cloud-config', 'text/jinja2'],
    ['hello', undefined],
  ];
  for (const [content, want] of cases) assert.equal(typeFromStartsWith(content), want, content);
});

test('bounded YAML: YAML 1.1 as cloud-init reads it, and limits before and after parsing', () => {
  const ok = parseYamlBounded('#cloud-config\npackage_update: yes\nmode: 0644\ncontent: y\nn: 1e3\n');
  assert.ok(ok.ok);
  assert.deepEqual(ok.value, { package_update: true, mode: 420, content: 'y', n: '1e3' }, 'PyYAML reads y and 1e3 as strings');
  const cases: Array<[string, string, RegExp]> = [
    ['too large', 'a: ' + 'x'.repeat(200 * 1024), /bytes; at most/],
    ['deep flow nesting', '['.repeat(100) + ']'.repeat(100), /nests deeper than 64/],
    ['deep block nesting', Array.from({ length: 70 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1', /nests deeper than 64/],
    ['broken', 'a: [1, 2\nb: c: d\n', /is not valid YAML/],
    ['alias bomb', 'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n', /alias|YAML/i],
  ];
  for (const [name, text, want] of cases) {
    const r = parseYamlBounded(text);
    assert.equal(r.ok, false, name);
    assert.match((r as { message: string }).message, want, name);
  }
});
