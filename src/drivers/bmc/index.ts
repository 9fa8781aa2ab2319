// The BMC drivers by endpoint `driver` name, for controllers that get a BmcEndpoint from a hardware record.

import { IpmiDriver, type IpmiDriverOptions } from './ipmi/client.js';
import { RedfishDriver, type RedfishDriverOptions } from './redfish/client.js';
import type { BmcDriver } from './types.js';

export * from './types.js';
export { RedfishDriver, type RedfishDriverOptions } from './redfish/client.js';
export { IpmiDriver, type IpmiDriverOptions } from './ipmi/client.js';

export function bmcDrivers(redfish: RedfishDriverOptions = {}, ipmi: IpmiDriverOptions = {}): Record<string, BmcDriver> {
  return { redfish: new RedfishDriver(redfish), ipmi: new IpmiDriver(ipmi) };
}
