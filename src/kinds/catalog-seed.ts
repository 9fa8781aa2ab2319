// The catalog a fresh metalplane starts with: metros, facilities, plans and operating systems modelled on
// Equinix Metal's public catalog (codes, hardware specs and hourly prices are close to what it listed), so
// that Metal API clients and Terraform configurations written for it work unchanged.
import { facilityKind } from './facility.js';
import { metroKind } from './metro.js';
import { operatingSystemKind, operatingSystemName } from './operating-system.js';
import { planKind } from './plan.js';
import { ipPoolKind } from './ip-pool.js';
import { apiVersionOf, type KindDeclaration, type KubeObject } from './types.js';

const catalogLabel = 'metalplane.dev/catalog';

function object(kind: KindDeclaration, name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: apiVersionOf(kind),
    kind: kind.kind,
    metadata: { name, labels: { [catalogLabel]: 'seed', ...labels } },
    spec,
  };
}

const metros: [code: string, name: string, country: string][] = [
  ['da', 'Dallas', 'US'],
  ['ny', 'New York', 'US'],
  ['sv', 'Silicon Valley', 'US'],
  ['ch', 'Chicago', 'US'],
  ['dc', 'Washington DC', 'US'],
  ['la', 'Los Angeles', 'US'],
  ['am', 'Amsterdam', 'NL'],
  ['fr', 'Frankfurt', 'DE'],
  ['ld', 'London', 'GB'],
  ['sg', 'Singapore', 'SG'],
  ['sy', 'Sydney', 'AU'],
  ['ty', 'Tokyo', 'JP'],
];

interface FacilitySeed {
  code: string;
  metro: string;
  name: string;
  city: string;
  state?: string;
  country: string;
  zipCode?: string;
}

const facilities: FacilitySeed[] = [
  { code: 'da11', metro: 'da', name: 'Dallas DA11', city: 'Dallas', state: 'TX', country: 'US', zipCode: '75207' },
  { code: 'da6', metro: 'da', name: 'Dallas DA6', city: 'Dallas', state: 'TX', country: 'US', zipCode: '75207' },
  { code: 'ny5', metro: 'ny', name: 'New York NY5', city: 'Secaucus', state: 'NJ', country: 'US', zipCode: '07094' },
  { code: 'ny7', metro: 'ny', name: 'New York NY7', city: 'New York', state: 'NY', country: 'US', zipCode: '10011' },
  { code: 'sv15', metro: 'sv', name: 'Silicon Valley SV15', city: 'San Jose', state: 'CA', country: 'US', zipCode: '95131' },
  { code: 'sv16', metro: 'sv', name: 'Silicon Valley SV16', city: 'San Jose', state: 'CA', country: 'US', zipCode: '95131' },
  { code: 'ch3', metro: 'ch', name: 'Chicago CH3', city: 'Elk Grove Village', state: 'IL', country: 'US', zipCode: '60007' },
  { code: 'dc13', metro: 'dc', name: 'Washington DC DC13', city: 'Ashburn', state: 'VA', country: 'US', zipCode: '20147' },
  { code: 'la4', metro: 'la', name: 'Los Angeles LA4', city: 'El Segundo', state: 'CA', country: 'US', zipCode: '90245' },
  { code: 'am6', metro: 'am', name: 'Amsterdam AM6', city: 'Amsterdam', country: 'NL', zipCode: '1101 BK' },
  { code: 'fr2', metro: 'fr', name: 'Frankfurt FR2', city: 'Frankfurt am Main', country: 'DE', zipCode: '60314' },
  { code: 'ld7', metro: 'ld', name: 'London LD7', city: 'Slough', country: 'GB' },
  { code: 'sg1', metro: 'sg', name: 'Singapore SG1', city: 'Singapore', country: 'SG' },
  { code: 'sy4', metro: 'sy', name: 'Sydney SY4', city: 'Sydney', state: 'NSW', country: 'AU' },
  { code: 'ty11', metro: 'ty', name: 'Tokyo TY11', city: 'Tokyo', country: 'JP' },
];

const allMetros = metros.map(([code]) => code);
const coreMetros = ['da', 'ny', 'sv', 'ch', 'dc', 'am', 'fr', 'ld', 'sg', 'sy', 'ty'];

type Drive = { count: number; size: string; type: 'HDD' | 'SSD' | 'NVME'; category: 'boot' | 'cache' | 'storage' };

interface PlanSeed {
  slug: string;
  description: string;
  categories: string[];
  cpus: { count: number; type: string; cores: number }[];
  memory: string;
  drives: Drive[];
  nics: { count: number; type: '10Gbps' | '25Gbps' }[];
  hour: number;
  metros: string[];
}

const plans: PlanSeed[] = [
  {
    slug: 'c3.small.x86',
    description: 'An 8-core general-purpose server: web fronts, CI runners, small Kubernetes nodes.',
    categories: ['compute', 'current_gen'],
    cpus: [{ count: 1, type: 'Intel Xeon E-2278G 8-Core @ 3.40GHz', cores: 8 }],
    memory: '32GB',
    drives: [{ count: 2, size: '480GB', type: 'SSD', category: 'boot' }],
    nics: [{ count: 2, type: '10Gbps' }],
    hour: 0.75,
    metros: allMetros,
  },
  {
    slug: 'c3.medium.x86',
    description: 'A 24-core AMD EPYC server with fast local SSDs: build farms, game servers, Kubernetes workers.',
    categories: ['compute', 'current_gen'],
    cpus: [{ count: 1, type: 'AMD EPYC 7402P 24-Core @ 2.80GHz', cores: 24 }],
    memory: '64GB',
    drives: [
      { count: 2, size: '240GB', type: 'SSD', category: 'boot' },
      { count: 2, size: '480GB', type: 'SSD', category: 'storage' },
    ],
    nics: [{ count: 2, type: '10Gbps' }],
    hour: 1.5,
    metros: allMetros,
  },
  {
    slug: 'm3.small.x86',
    description: 'An 8-core server with more memory and 25Gbps networking: databases, caches.',
    categories: ['compute', 'current_gen'],
    cpus: [{ count: 1, type: 'Intel Xeon E-2378G 8-Core @ 2.80GHz', cores: 8 }],
    memory: '64GB',
    drives: [{ count: 2, size: '480GB', type: 'SSD', category: 'boot' }],
    nics: [{ count: 2, type: '25Gbps' }],
    hour: 1.05,
    metros: allMetros,
  },
  {
    slug: 'm3.large.x86',
    description: 'A 32-core AMD EPYC server with 256GB and NVMe: virtualization hosts, big databases.',
    categories: ['compute', 'current_gen'],
    cpus: [{ count: 1, type: 'AMD EPYC 7502P 32-Core @ 2.50GHz', cores: 32 }],
    memory: '256GB',
    drives: [
      { count: 2, size: '240GB', type: 'SSD', category: 'boot' },
      { count: 2, size: '3.8TB', type: 'NVME', category: 'storage' },
    ],
    nics: [{ count: 2, type: '25Gbps' }],
    hour: 3.1,
    metros: coreMetros,
  },
  {
    slug: 's3.xlarge.x86',
    description: 'A storage server: 12 large HDDs behind NVMe cache for object stores and backups.',
    categories: ['storage', 'current_gen'],
    cpus: [{ count: 1, type: 'Intel Xeon Silver 4214 12-Core @ 2.20GHz', cores: 12 }],
    memory: '192GB',
    drives: [
      { count: 2, size: '960GB', type: 'SSD', category: 'boot' },
      { count: 2, size: '256GB', type: 'NVME', category: 'cache' },
      { count: 12, size: '8TB', type: 'HDD', category: 'storage' },
    ],
    nics: [{ count: 2, type: '25Gbps' }],
    hour: 2.95,
    metros: ['da', 'ny', 'sv', 'am', 'fr', 'sg'],
  },
  {
    slug: 'n3.xlarge.x86',
    description: 'A 64-core network-dense server with 4x 25Gbps: NFV, load balancers, packet processing.',
    categories: ['compute', 'network', 'current_gen'],
    cpus: [{ count: 2, type: 'Intel Xeon Gold 6338 32-Core @ 2.00GHz', cores: 32 }],
    memory: '512GB',
    drives: [
      { count: 2, size: '240GB', type: 'SSD', category: 'boot' },
      { count: 2, size: '3.8TB', type: 'NVME', category: 'storage' },
    ],
    nics: [{ count: 4, type: '25Gbps' }],
    hour: 4.5,
    metros: ['da', 'ny', 'sv', 'am', 'fr', 'sg', 'ty'],
  },
];

interface OsSeed {
  slug: string;
  name: string;
  distro: string;
  distroLabel: string;
  version: string;
  family: string;
  provisionableOn: string[];
  defaultUser?: string;
  image?: { url: string; format: 'raw' | 'qcow2' | 'raw.gz' | 'raw.bz2' | 'raw.xz' | 'raw.zst' | 'tar.gz' };
  workflow?: string;
  customIpxe?: boolean;
  preinstallable?: boolean;
}

const operatingSystems: OsSeed[] = [
  {
    slug: 'ubuntu_24_04',
    name: 'Ubuntu 24.04 LTS',
    distro: 'ubuntu',
    distroLabel: 'Ubuntu',
    version: '24.04',
    family: 'debian',
    provisionableOn: ['*.x86'],
    image: { url: 'https://cloud-images.ubuntu.com/releases/24.04/release/ubuntu-24.04-server-cloudimg-amd64.img', format: 'qcow2' },
    workflow: 'ubuntu-install',
    preinstallable: true,
  },
  {
    slug: 'ubuntu_22_04',
    name: 'Ubuntu 22.04 LTS',
    distro: 'ubuntu',
    distroLabel: 'Ubuntu',
    version: '22.04',
    family: 'debian',
    provisionableOn: ['*.x86'],
    image: { url: 'https://cloud-images.ubuntu.com/releases/22.04/release/ubuntu-22.04-server-cloudimg-amd64.img', format: 'qcow2' },
    workflow: 'ubuntu-install',
  },
  {
    slug: 'debian_12',
    name: 'Debian 12',
    distro: 'debian',
    distroLabel: 'Debian',
    version: '12',
    family: 'debian',
    provisionableOn: ['*.x86'],
    image: { url: 'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.raw', format: 'raw' },
    workflow: 'debian-install',
  },
  {
    slug: 'rocky_9',
    name: 'Rocky Linux 9',
    distro: 'rocky',
    distroLabel: 'Rocky Linux',
    version: '9',
    family: 'redhat',
    provisionableOn: ['c3.small.x86', 'c3.medium.x86', 'm3.small.x86', 'm3.large.x86', 'n3.xlarge.x86'],
    image: { url: 'https://dl.rockylinux.org/pub/rocky/9/images/x86_64/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2', format: 'qcow2' },
    workflow: 'rhel-install',
  },
  {
    slug: 'flatcar_stable',
    name: 'Flatcar Container Linux (stable)',
    distro: 'flatcar',
    distroLabel: 'Flatcar',
    version: 'stable',
    family: 'flatcar',
    provisionableOn: ['*.x86'],
    defaultUser: 'core',
    image: { url: 'https://stable.release.flatcar-linux.net/amd64-usr/current/flatcar_production_image.bin.bz2', format: 'raw.bz2' },
    workflow: 'flatcar-install',
  },
  {
    slug: 'custom_ipxe',
    name: 'Custom iPXE',
    distro: 'custom_ipxe',
    distroLabel: 'Custom iPXE',
    version: '1',
    family: 'custom',
    provisionableOn: ['*'],
    customIpxe: true,
  },
];

/** The seed catalog: metros, facilities, plans and operating systems, ready to create (Strict-valid). */
export function catalogSeed(): KubeObject[] {
  const out: KubeObject[] = [];
  for (const [code, name, country] of metros) out.push(object(metroKind, code, { code, name, country }));
  for (const f of facilities) {
    const address: Record<string, string> = { city: f.city, country: f.country };
    if (f.state) address.state = f.state;
    if (f.zipCode) address.zipCode = f.zipCode;
    out.push(
      object(
        facilityKind,
        f.code,
        { code: f.code, metro: f.metro, name: f.name, address, features: ['baremetal', 'backend_transfer', 'layer_2', 'global_ipv4'] },
        { 'metalplane.dev/metro': f.metro },
      ),
    );
  }
  for (const p of plans) {
    out.push(
      object(planKind, p.slug, {
        slug: p.slug,
        name: p.slug,
        description: p.description,
        class: p.slug,
        line: 'baremetal',
        type: 'standard',
        categories: p.categories,
        specs: {
          cpus: p.cpus,
          memory: { total: p.memory },
          drives: p.drives,
          nics: p.nics,
          features: { raid: false, txt: true, uefi: true },
        },
        pricing: { hour: p.hour },
        availableIn: p.metros,
        deploymentTypes: ['on_demand', 'spot_market'],
        legacy: false,
      }),
    );
  }
  for (const os of operatingSystems) {
    const spec: Record<string, unknown> = {
      slug: os.slug,
      name: os.name,
      distro: os.distro,
      distroLabel: os.distroLabel,
      version: os.version,
      family: os.family,
      provisionableOn: os.provisionableOn,
      defaultUser: os.defaultUser ?? 'root',
      licensed: false,
      preinstallable: os.preinstallable ?? false,
    };
    if (os.image) spec.image = os.image;
    if (os.workflow) spec.workflow = os.workflow;
    if (os.customIpxe) spec.customIpxe = true;
    out.push(object(operatingSystemKind, operatingSystemName(os.slug), spec, { 'metalplane.dev/distro': os.distro }));
  }
  metros.forEach(([code], i) => out.push(...metroPools(code, i)));
  return out;
}

/**
 * Address pools of one metro (the i-th): a public IPv4 /20 handing out /31s, a private IPv4 /16 handing each
 * project a /25 (more as it fills) and devices /31s inside it, and an IPv6 /48 handing each project a /56 and
 * devices /127s — Equinix Metal's scheme. The ranges are examples; operators replace them with their own.
 */
function metroPools(metro: string, i: number): KubeObject[] {
  const pool = (name: string, spec: Record<string, unknown>): KubeObject => object(ipPoolKind, `${metro}-${name}`, { metro, ...spec }, { 'metalplane.dev/metro': metro });
  return [
    pool('public-ipv4', { family: 4, public: true, cidr: `147.75.${i * 16}.0/20`, assignPrefix: 31 }),
    pool('private-ipv4', { family: 4, public: false, cidr: `10.${64 + i}.0.0/16`, assignPrefix: 31, projectPrefix: 25 }),
    pool('public-ipv6', { family: 6, public: true, cidr: `2604:1380:${(0x4600 + i).toString(16)}::/48`, assignPrefix: 127, projectPrefix: 56 }),
  ];
}
