// The BMC driver contract the controllers program against: read a machine's power and boot state, switch power,
// set the next boot device. Drivers (Redfish today) map their protocol onto it and their failures onto BmcError,
// whose `transient` flag tells a reconciler whether to requeue with backoff or to stop and report.

export type PowerState = 'on' | 'off';

/** off = ForceOff, soft-off = GracefulShutdown, reset = ForceRestart, cycle = PowerCycle. */
export type PowerAction = 'on' | 'off' | 'soft-off' | 'reset' | 'cycle';

export type BootDevice = 'pxe' | 'disk' | 'bios' | 'cdrom';

export interface BmcEndpoint {
  driver: 'redfish' | 'ipmi';
  /** Base URL of the BMC, e.g. `http://127.0.0.1:8000` or `https://10.0.0.5`. */
  address: string;
  /** The system resource, e.g. `/redfish/v1/Systems/m-001`; if absent, the only member of `/redfish/v1/Systems`. */
  systemId?: string;
  /** Accept any TLS certificate (BMCs usually ship self-signed ones). */
  insecureSkipVerify?: boolean;
}

export interface BmcCredentials {
  username: string;
  password: string;
}

export interface SystemInfo {
  powerState: PowerState;
  /** `device: 'none'` when no override is active. */
  bootOverride: { device: BootDevice | 'none'; once: boolean };
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  uuid?: string;
  memoryGiB?: number;
  processorCount?: number;
  /** Lower-case, colon-separated (`0c:c4:7a:00:00:01`). */
  macAddresses?: string[];
}

export interface BmcClient {
  system(): Promise<SystemInfo>;
  powerState(): Promise<PowerState>;
  /** Drivers may skip an action the machine is already in (on when on, off/soft-off when off). */
  setPower(action: PowerAction): Promise<void>;
  /** `once: true` boots the device on the next boot only; absent or false keeps it (Continuous). */
  setBootDevice(device: BootDevice, opts?: { once?: boolean }): Promise<void>;
}

export type BmcErrorKind = 'unreachable' | 'timeout' | 'unauthorized' | 'not-found' | 'rejected' | 'protocol';

export interface BmcErrorOptions {
  /** Defaults to true for `unreachable` and `timeout`, false otherwise (a 5xx passes true). */
  transient?: boolean;
  /** The HTTP status the BMC answered with, when it answered. */
  status?: number;
  cause?: unknown;
}

/**
 * A BMC operation that failed. Transient errors (unreachable, timeout, 5xx) are worth retrying with backoff;
 * the others (unauthorized, not-found, rejected, protocol) will fail the same way until someone changes
 * the credentials, the address or the request.
 */
export class BmcError extends Error {
  readonly transient: boolean;
  readonly status?: number;

  constructor(
    readonly kind: BmcErrorKind,
    message: string,
    options: BmcErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BmcError';
    this.transient = options.transient ?? (kind === 'unreachable' || kind === 'timeout');
    if (options.status !== undefined) this.status = options.status;
  }
}

export interface BmcDriver {
  /** Validates the endpoint (throws BmcError 'rejected' if unusable) without any I/O. */
  connect(endpoint: BmcEndpoint, credentials: BmcCredentials): BmcClient;
}
