// The route groups of the Metal API beyond identity and projects, and the kinds they read. One list, so that a
// new group is one import and one line here.
import type { KindDeclaration } from '../kinds/types.js';
import type { MetalRoutes } from './index.js';
import { eventKind } from '../kinds/core.js';
import { usageRecordKind } from '../kinds/usage-record.js';
import { registerEventRoutes } from './events.js';
import { networkingRouteKinds, registerNetworkingRoutes } from './networking.js';
import { bgpRouteKinds, registerBgpRoutes } from './bgp.js';

export function metalRouteGroups(): { routes: MetalRoutes[]; kinds: KindDeclaration[] } {
  return {
    routes: [registerEventRoutes, registerNetworkingRoutes, registerBgpRoutes],
    kinds: [eventKind, usageRecordKind, ...networkingRouteKinds, ...bgpRouteKinds],
  };
}
