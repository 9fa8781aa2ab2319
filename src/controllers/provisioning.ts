// The provisioning controllers — devices (scheduling, lifecycle, actions, deletion), workflows (BMC steps and
// timeouts), hardware (discovery, failure recovery, power), IP reservations, plan capacity, usage records,
// termination times, the address blocks of deleted projects, networks (switch ports, VLANs, BGP) and CloudConfigs —
// started together over shared informers. The caller decides when they run (only while holding the leader lease).
import type { Controller } from '../runtime/controller.js';
import { createCapacityController } from './capacity/capacity-controller.js';
import { createCloudConfigController } from './cloudconfig/cloudconfig-controller.js';
import { createDeviceController } from './device/device-controller.js';
import { createHardwareController, type HardwareControllerOptions } from './hardware/hardware-controller.js';
import { createProjectBlocksController } from './ipam/project-blocks.js';
import { createReservationController } from './ipam/reservation-controller.js';
import type { ProvisioningDeps } from './provisioning-context.js';
import { createWorkflowController } from './workflow/workflow-controller.js';
import { createUsageController } from './usage/usage-controller.js';
import { createTerminationController } from './termination/termination-controller.js';
import { createNetworkController, networkKindsFrom } from './network/network-controller.js';

export interface ProvisioningControllers {
  readonly controllers: Controller[];
  stop(): Promise<void>;
}

export function startProvisioningControllers(deps: ProvisioningDeps, opts: { hardware?: HardwareControllerOptions } = {}): ProvisioningControllers {
  const controllers = [
    createWorkflowController(deps),
    createDeviceController(deps),
    createHardwareController(deps, opts.hardware),
    createReservationController(deps),
    createUsageController(deps),
    createTerminationController(deps),
    createCapacityController(deps),
    createProjectBlocksController(deps),
    createNetworkController({ ...deps, networkKinds: networkKindsFrom(deps.client) }),
    createCloudConfigController(deps),
  ];
  deps.informers.start();
  for (const c of controllers) {
    c.start().catch((err: unknown) => deps.logger.error({ err, controller: c.name }, 'controller failed to start'));
  }
  let stopping: Promise<void> | undefined;
  return {
    controllers,
    stop() {
      stopping ??= Promise.all(controllers.map((c) => c.stop())).then(() => undefined);
      return stopping;
    },
  };
}
