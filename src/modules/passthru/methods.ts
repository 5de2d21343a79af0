// bdev_passthru_create / bdev_passthru_delete, with SPDK's parameters and rpc.py's forms.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { flag } from '../../method_form.js';
import { createPassthru } from './ops.js';

interface PassthruCreate {
  base_bdev_name: string;
  name: string;
  uuid?: string;
}
const passthruCreate: JSONSchemaType<PassthruCreate> = {
  type: 'object',
  properties: { base_bdev_name: { type: 'string' }, name: { type: 'string' }, uuid: { type: 'string', nullable: true } },
  required: ['base_bdev_name', 'name'],
  additionalProperties: false,
};

export const PASSTHRU_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_passthru_create',
    passthruCreate,
    async (p, ctx) => {
      const b = await createPassthru(ctx, { baseBdevName: p.base_bdev_name, name: p.name, uuid: p.uuid });
      return b.name;
    },
    {
      flags: [
        flag(['-b', '--base-bdev-name'], 'base_bdev_name', 'string', 'the bdev to pass I/O through to (it is claimed)', 'BASE'),
        flag(['-p', '--name'], 'name', 'string', "the new bdev's name", 'NAME'),
        flag(['-u', '--uuid'], 'uuid'),
      ],
      needs: { base_bdev_name: '-b BASE', name: '-p NAME' },
      usage: ['bdev_passthru_create -b BASE -p NAME [-u UUID]'],
    },
  ),
  deleteMethod('bdev_passthru_delete', 'passthru'),
];
