// The kinds the console shows, as kube API resources.
import type { Resource } from './api';

const mp = (plural: string, namespaced: boolean): Resource => ({ group: 'metalplane.dev', version: 'v1alpha1', plural, namespaced });

export const R = {
  namespaces: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  events: { group: '', version: 'v1', plural: 'events', namespaced: true },
  metros: mp('metros', false),
  facilities: mp('facilities', false),
  plans: mp('plans', false),
  operatingSystems: mp('operatingsystems', false),
  hardware: mp('hardware', false),
  devices: mp('devices', true),
  workflows: mp('workflows', true),
  ipAddresses: mp('ipaddresses', false),
  sshKeys: mp('sshkeys', true),
  cloudConfigs: mp('cloudconfigs', true),
} satisfies Record<string, Resource>;
