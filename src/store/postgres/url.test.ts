// The store URL: hosts, our own parameters split off, and what `pg` is left with.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePostgresUrl } from './url.js';

describe('parsePostgresUrl', () => {
  const table: { name: string; url: string; hosts: [string, number][]; pg: string[]; schema?: string; timeouts?: Record<string, number>; writable?: boolean }[] = [
    { name: 'one host, nothing of ours', url: 'postgres://u:p@db:6000/mp', hosts: [['db', 6000]], pg: ['postgres://u:p@db:6000/mp'] },
    { name: 'default port', url: 'postgresql://db/mp?sslmode=require', hosts: [['db', 5432]], pg: ['postgresql://db/mp?sslmode=require'] },
    {
      name: 'schema and timeouts are ours, the rest is for pg',
      url: 'postgres://u@db/mp?schema=s1&lock_timeout=500&statement_timeout=9000&idle_in_transaction_session_timeout=700&application_name=x',
      hosts: [['db', 5432]],
      pg: ['postgres://u@db/mp?application_name=x'],
      schema: 's1',
      timeouts: { lockTimeoutMs: 500, statementTimeoutMs: 9000, idleInTransactionTimeoutMs: 700 },
    },
    {
      name: "libpq's multi-host form, one pg URL per host",
      url: 'postgres://u:p@10.0.0.1:5432,10.0.0.2:5433,[::1]/mp?target_session_attrs=read-write&schema=a',
      hosts: [['10.0.0.1', 5432], ['10.0.0.2', 5433], ['::1', 5432]],
      pg: ['postgres://u:p@10.0.0.1:5432/mp', 'postgres://u:p@10.0.0.2:5433/mp', 'postgres://u:p@[::1]/mp'],
      schema: 'a',
      writable: true,
    },
  ];
  for (const tc of table) {
    it(tc.name, () => {
      const p = parsePostgresUrl(tc.url);
      assert.deepEqual(p.hosts.map((h) => [h.host, h.port]), tc.hosts);
      assert.deepEqual(p.connectionStrings, tc.pg);
      assert.equal(p.schema, tc.schema);
      assert.deepEqual(p.timeouts, tc.timeouts ?? {});
      assert.equal(p.requireWritable, tc.writable ?? false);
    });
  }

  const bad: { name: string; url: string; message: RegExp }[] = [
    { name: 'a timeout that is not milliseconds', url: 'postgres://db/mp?lock_timeout=5s', message: /lock_timeout=5s .* positive whole number of milliseconds, e\.g\. lock_timeout=10000/ },
    { name: 'a zero timeout (no limit at all)', url: 'postgres://db/mp?statement_timeout=0', message: /statement_timeout=0/ },
    { name: 'a session kind the store cannot use', url: 'postgres://db/mp?target_session_attrs=standby', message: /use any, read-write or primary/ },
    { name: 'a broken host list', url: 'postgres://u:secret@a:1,:2/mp', message: /":2" .* host1:port1,host2:port2/ },
    { name: 'a schema that is not an identifier', url: 'postgres://db/mp?schema=1x', message: /letters, digits and _/ },
  ];
  for (const tc of bad) {
    it(`refuses ${tc.name}, saying what would do`, () => {
      assert.throws(() => parsePostgresUrl(tc.url), (err: Error) => {
        assert.match(err.message, tc.message);
        assert.doesNotMatch(err.message, /secret/, 'no password in the message');
        return (err as { code?: string }).code === 'InvalidArgument';
      });
    });
  }
});
