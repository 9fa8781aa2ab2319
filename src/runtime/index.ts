// The controller runtime: informers, cache, work queue, reconcile loop, conditions, events, leader lease.
export type * from './client.js';
export * from './logger.js';
export * from './workqueue.js';
export * from './cache.js';
export * from './informer.js';
export * from './controller.js';
export * from './conditions.js';
export * from './events.js';
export * from './leader.js';
export * from './fencing.js';
