// The BMC drivers by endpoint `driver` name, for controllers that get a BmcEndpoint from a hardware record.

import { RedfishDriver, type RedfishDriverOptions } from './redfish/client.js';
import { BmcError, type BmcDriver } from './types.js';

export * from './types.js';
export { RedfishDriver, type RedfishDriverOptions } from './redfish/client.js';

const ipmiNotSupported: BmcDriver = {
  connect(endpoint) {
    throw new BmcError(
      'rejected',
      `ipmi ${endpoint.address}: IPMI is not supported yet; use driver: redfish (BMCs made since about 2017 speak Redfish)`,
    );
  },
};

export function bmcDrivers(redfish: RedfishDriverOptions = {}): Record<string, BmcDriver> {
  return { redfish: new RedfishDriver(redfish), ipmi: ipmiNotSupported };
}
