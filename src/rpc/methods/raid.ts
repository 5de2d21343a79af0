// raid0: bdev_raid_create / bdev_raid_get_bdevs / bdev_raid_delete.
import type { JSONSchemaType } from 'ajv';
import { InvalidBdevError, UnsupportedError } from '../../errors.js';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';
import { byName } from './aio.js';

interface RaidCreate { name: string; raid_level: string; base_bdevs: string[]; strip_size_kb?: number; uuid?: string; superblock?: boolean }
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

interface RaidGet { category: 'all' | 'online' | 'configuring' | 'offline' }
const raidGet: JSONSchemaType<RaidGet> = {
  type: 'object',
  properties: { category: { type: 'string', enum: ['all', 'online', 'configuring', 'offline'] } },
  required: ['category'],
  additionalProperties: false,
};

export function registerRaidMethods(r: Registrar, s: Server): void {
  r.method('bdev_raid_create', raidCreate, async (p) => {
    if (p.superblock === true) throw new UnsupportedError('raid superblocks are not supported: the raid is kept in save_config instead');
    if (p.strip_size_kb === undefined || p.strip_size_kb === 0) throw new InvalidBdevError('raid0 needs strip_size_kb (a power of two)');
    await s.createRaid({ name: p.name, raidLevel: p.raid_level, baseBdevs: p.base_bdevs, stripSizeKb: p.strip_size_kb, uuid: p.uuid });
    return true;
  });
  r.method('bdev_raid_get_bdevs', raidGet, (p) => s.raidBdevs(p.category));
  r.method('bdev_raid_delete', byName, async (p) => { await s.deleteBdev(p.name, 'raid'); return true; });
}
