// The route groups of the Metal API beyond identity and projects, and the kinds they read. One list, so that a
// new group is one import and one line here.
import type { KindDeclaration } from '../kinds/types.js';
import type { MetalRoutes } from './index.js';
import { catalogKinds, registerCatalogRoutes } from './catalog.js';
import { ipKinds, registerIpRoutes } from './ips.js';

export function metalRouteGroups(): { routes: MetalRoutes[]; kinds: KindDeclaration[] } {
  return {
    routes: [
      registerCatalogRoutes,
      registerIpRoutes,
    ],
    kinds: [
      ...catalogKinds,
      ...ipKinds,
    ],
  };
}
