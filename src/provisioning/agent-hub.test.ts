import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentHub } from './agent-hub.js';

test('a forgotten boot does not come back alive when its last long poll touches the hub; a new boot does', () => {
  let now = 1_000;
  const touched: string[] = [];
  const hub = new AgentHub({ now: () => now, aliveMs: 45_000, onTouch: (_hw, boot) => void touched.push(boot) });
  hub.touch('m1', 'boot-a');
  assert.equal(hub.isAlive('m1', 'boot-a'), true);
  // The machine is reset: the controller forgets its agent. The old boot's long poll then ends and touches.
  hub.forget('m1');
  now += 10;
  hub.touch('m1', 'boot-a');
  assert.equal(hub.isAlive('m1'), false, 'the old boot stays forgotten');
  assert.deepEqual(touched, ['boot-a'], 'and is not published as a heartbeat');
  // The new boot's agent registers.
  hub.touch('m1', 'boot-b');
  assert.equal(hub.isAlive('m1', 'boot-b'), true);
  // And again for the next reset: b is refused, the boot after it (c) is not.
  hub.forget('m1');
  hub.touch('m1', 'boot-b');
  assert.equal(hub.isAlive('m1'), false);
  hub.touch('m1', 'boot-c');
  assert.equal(hub.isAlive('m1', 'boot-c'), true);
});
