// raid0: bdev_raid_create / bdev_raid_get_bdevs / bdev_raid_delete.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import { InvalidBdevError, UnsupportedError } from '../../errors.js';
import type { MethodSpec } from '../../method.js';
import { flag, str } from '../../method_form.js';
import { createRaid, raidBdevs } from './ops.js';

interface RaidCreate {
  name: string;
  raid_level: string;
  base_bdevs: string[];
  strip_size_kb?: number;
  uuid?: string;
  superblock?: boolean;
}
const raidCreate: JSONSchemaType<RaidCreate> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    raid_level: { type: 'string' },
    base_bdevs: { type: 'array', items: { type: 'string' }, minItems: 1 },
    strip_size_kb: { type: 'integer', minimum: 0, nullable: true },
    uuid: { type: 'string', nullable: true },
    superblock: { type: 'boolean', nullable: true },
  },
  required: ['name', 'raid_level', 'base_bdevs'],
  additionalProperties: false,
};

interface RaidGet {
  category: 'all' | 'online' | 'configuring' | 'offline';
}
const raidGet: JSONSchemaType<RaidGet> = {
  type: 'object',
  properties: { category: { type: 'string', enum: ['all', 'online', 'configuring', 'offline'] } },
  required: ['category'],
  additionalProperties: false,
};

export const RAID_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_raid_create',
    raidCreate,
    async (p, ctx) => {
      if (p.superblock === true) throw new UnsupportedError('raid superblocks are not supported: the raid is kept in save_config instead');
      if (p.strip_size_kb === undefined || p.strip_size_kb === 0) throw new InvalidBdevError('raid0 needs strip_size_kb (a power of two)');
      await createRaid(ctx, { name: p.name, raidLevel: p.raid_level, baseBdevs: p.base_bdevs, stripSizeKb: p.strip_size_kb, uuid: p.uuid });
      return true;
    },
    {
      flags: [
        flag(['-n', '--name'], 'name'),
        flag(['-z', '--strip-size-kb'], 'strip_size_kb', 'int', 'strip size in KiB'),
        flag(['-r', '--raid-level'], 'raid_level', 'string', '0 or raid0'),
        flag(['-b', '--base-bdevs'], 'base_bdevs', 'list', 'the members, space-separated in one argument', '"B1 B2"'),
        flag(['--uuid', '-u'], 'uuid'),
        flag(['-s', '--superblock'], 'superblock', 'bool'),
      ],
    },
  ),
  method('bdev_raid_get_bdevs', raidGet, (p, ctx) => raidBdevs(ctx, p.category), {
    args: [str('category', true)],
    build: (p) => ({ category: 'all', ...p }),
  }),
  deleteMethod('bdev_raid_delete', 'raid'),
];
