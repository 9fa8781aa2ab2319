// The route groups of the Metal API beyond identity and projects, and the kinds they read. One list, so that a
// new group is one import and one line here.
import type { KindDeclaration } from '../kinds/types.js';
import type { MetalRoutes } from './index.js';
import { eventKind } from '../kinds/core.js';
import { usageRecordKind } from '../kinds/usage-record.js';
import { registerEventRoutes } from './events.js';
import { deviceRouteKinds, registerDeviceRoutes } from './devices.js';
import { registerSshKeyRoutes } from './ssh-keys.js';
import { catalogKinds, registerCatalogRoutes } from './catalog.js';
import { ipKinds, registerIpRoutes } from './ips.js';

export function metalRouteGroups(): { routes: MetalRoutes[]; kinds: KindDeclaration[] } {
  return {
    routes: [
      registerDeviceRoutes,
      registerSshKeyRoutes,
      registerEventRoutes,
      registerCatalogRoutes,
      registerIpRoutes,
    ],
    kinds: [
      ...deviceRouteKinds,
      eventKind,
      usageRecordKind,
      ...catalogKinds,
      ...ipKinds,
    ],
  };
}
