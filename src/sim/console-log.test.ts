// The machine console's bounded log: what is kept, cut, collapsed and answered after a line number.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConsoleLog, redactTokens, type ConsoleLogOptions } from './console-log.js';

test('the console log keeps the newest lines within its bounds', () => {
  let t = Date.parse('2026-01-02T03:04:05.000Z');
  const now = () => (t += 1000);
  const cases: Array<{
    name: string;
    opts?: ConsoleLogOptions;
    write: string[];
    after?: number;
    texts: string[];
    dropped: number;
    last: number;
  }> = [
    { name: 'lines in order', write: ['one', 'two'], texts: ['one', 'two'], dropped: 0, last: 2 },
    { name: 'a text with newlines is several lines', write: ['a\nb\r\nc'], texts: ['a', 'b', 'c'], dropped: 0, last: 3 },
    { name: 'after a seq: only newer lines', write: ['one', 'two', 'three'], after: 2, texts: ['three'], dropped: 0, last: 3 },
    { name: 'after the last: nothing', write: ['one'], after: 1, texts: [], dropped: 0, last: 1 },
    {
      name: 'over the bound: the oldest go, counted',
      opts: { maxLines: 3 },
      write: ['1', '2', '3', '4', '5', '6', '7', '8'],
      texts: ['6', '7', '8'],
      dropped: 5,
      last: 8,
    },
    { name: 'a long line is cut', opts: { maxLineLength: 10 }, write: ['abcdefghijklmnop'], texts: ['abcdefghi…'], dropped: 0, last: 1 },
    {
      name: 'redacted before it is kept',
      opts: { redact: redactTokens },
      write: ['GET http://127.0.0.1:7080/metadata/nocloud/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXYifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ/meta-data', 'boot 3f9c2a1e5b7d4c8e9f0a1b2c3d4e5f6a7b8c9d0e ok', 'workflow default/a-rather-long-device-name-provision-12 ok'],
      texts: ['GET http://127.0.0.1:7080/metadata/nocloud/…/meta-data', 'boot … ok', 'workflow default/a-rather-long-device-name-provision-12 ok'],
      dropped: 0,
      last: 3,
    },
    { name: 'control characters are blanked', write: ['a\u001b[31mred\u0007'], texts: ['a [31mred '], dropped: 0, last: 1 },
    {
      name: 'a repeated line is kept once, with a count, at the end',
      write: ['PXE: no answer; retrying', 'PXE: no answer; retrying', 'PXE: no answer; retrying', 'ok'],
      texts: ['PXE: no answer; retrying (×3)', 'ok'],
      dropped: 0,
      last: 4,
    },
    {
      name: 'a repeat moves past a reader: after the old seq it is new again',
      write: ['x', 'x'],
      after: 1,
      texts: ['x (×2)'],
      dropped: 0,
      last: 2,
    },
  ];
  for (const c of cases) {
    const log = new ConsoleLog({ now, ...c.opts });
    for (const w of c.write) log.write(w);
    const got = log.read(c.after);
    assert.deepEqual(got.lines.map((l) => l.text), c.texts, c.name);
    assert.equal(got.dropped, c.dropped, `${c.name}: dropped`);
    assert.equal(got.last, c.last, `${c.name}: last`);
    assert.ok(got.lines.every((l) => /^\d{4}-\d\d-\d\dT/.test(l.time)), `${c.name}: ISO times`);
  }
});

test('the console log stays bounded however much is written', () => {
  const log = new ConsoleLog({ maxLines: 50 });
  for (let i = 0; i < 10_000; i++) log.write(`line ${i}`);
  const { lines, dropped, last } = log.read();
  assert.equal(lines.length, 50);
  assert.equal(lines[0]!.text, 'line 9950');
  assert.equal(dropped, 9950);
  assert.equal(last, 10_000);
  // What the reader gets is a copy: changing it does not change the log.
  lines[0]!.text = 'changed';
  assert.equal(log.read().lines[0]!.text, 'line 9950');
});
