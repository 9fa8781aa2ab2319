// RequestDrain: long polls parked in the hub are answered at drain and never resume; handlers at work are
// waited for; a poll that arrives while draining is answered at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { RequestDrain } from './drain.js';

test('drain answers parked long polls (204, Retry-After), waits for working handlers, and answers late polls at once', async () => {
  const drain = new RequestDrain();
  const app = Fastify();
  app.addHook('onRoute', drain.onRoute);
  let resumed = 0;
  let release!: () => void;
  const working = new Promise<void>((r) => (release = r));
  let workDone = false;
  // Like /agent/v1/next: look for work, wait in the hub, look again.
  app.post('/poll', async (req, reply) => {
    for (let round = 0; ; round++) {
      if (round > 0) resumed++;
      await drain.hub.wait('m1', 20_000, undefined, req);
    }
    return reply.code(500).send();
  });
  app.post('/work', async () => {
    await working;
    workDone = true;
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    const polls = [fetch(`${url}/poll`, { method: 'POST' }), fetch(`${url}/poll`, { method: 'POST' })];
    const work = fetch(`${url}/work`, { method: 'POST' });
    for (let i = 0; i < 200 && drain.hub.waiting() < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(drain.hub.waiting(), 2, 'both polls are parked in the hub');
    assert.equal(drain.running, 3);

    drain.start();
    for (const res of await Promise.all(polls)) {
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('retry-after'), '1');
    }
    assert.equal(drain.hub.waiting(), 0, 'the hub holds no timers for drained polls');
    const late = await fetch(`${url}/poll`, { method: 'POST' });
    assert.equal(late.status, 204, 'a poll while draining is answered at once');

    const settled = drain.settled(5_000);
    assert.equal(workDone, false);
    release();
    assert.equal(await settled, 0, 'nothing left running');
    assert.equal(workDone, true, 'settled waited for the working handler');
    assert.equal((await work).status, 200);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(resumed, 0, 'no drained poll went back to work');
  } finally {
    await app.close();
  }
});
