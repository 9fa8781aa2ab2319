// judgeDataDir: which data dirs are used, narrowed, warned about or refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeDataDir, type DataDirFacts } from './data-dir.js';

const dir = (mode: number, uid = 1000) => ({ mode: 0o040000 | mode, uid, isDirectory: () => true });

test('judgeDataDir', () => {
  const rows: Array<{ name: string; facts: DataDirFacts; want: RegExp | { create: boolean; narrow: boolean; warning?: RegExp } }> = [
    { name: 'absent: created', facts: { entries: [], uid: 1000 }, want: { create: true, narrow: false } },
    { name: 'our own, private', facts: { stat: dir(0o700), entries: ['state.db'], uid: 1000 }, want: { create: false, narrow: false } },
    { name: 'our own, 0755: narrowed', facts: { stat: dir(0o755), entries: ['state.db', 'ca.crt'], uid: 1000 }, want: { create: false, narrow: true } },
    { name: 'empty, 0755: narrowed', facts: { stat: dir(0o755), entries: [], uid: 1000 }, want: { create: false, narrow: true } },
    { name: 'holds other files: warned, left alone', facts: { stat: dir(0o755), entries: ['.bashrc', 'notes.txt'], uid: 1000 }, want: { create: false, narrow: false, warning: /holds other files and no metalplane state[\s\S]*leaves the directory's mode \(0755\) alone/ } },
    { name: 'group-writable: warned, left alone', facts: { stat: dir(0o770), entries: ['state.db'], uid: 1000 }, want: { create: false, narrow: false, warning: /is group-writable \(mode 0770\)[\s\S]*chmod 700/ } },
    { name: 'world-writable: refused', facts: { stat: dir(0o1777), entries: [], uid: 1000 }, want: /writable by every user \(mode 1777\)[\s\S]*chmod 700/ },
    { name: 'someone else\'s: refused', facts: { stat: dir(0o700, 0), entries: [], uid: 1000 }, want: /owned by uid 0, not by this user \(uid 1000\)/ },
    { name: 'a file: refused', facts: { stat: { mode: 0o100600, uid: 1000, isDirectory: () => false }, entries: [], uid: 1000 }, want: /is not a directory/ },
  ];
  for (const r of rows) {
    const v = judgeDataDir('/d', r.facts);
    if (r.want instanceof RegExp) {
      assert.equal(v.use, false, r.name);
      assert.match((v as { message: string }).message, r.want, r.name);
      continue;
    }
    assert.equal(v.use, true, r.name);
    const u = v as { create: boolean; narrow: boolean; warning?: string };
    assert.equal(u.create, r.want.create, r.name);
    assert.equal(u.narrow, r.want.narrow, r.name);
    if (r.want.warning) assert.match(u.warning ?? '', r.want.warning, r.name);
    else assert.equal(u.warning, undefined, r.name);
  }
});
