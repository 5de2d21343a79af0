// The RBD module's command-line forms: --rbd specs of `aionbd serve`, and rpc.py's forms of the
// bdev_rbd_* methods (repeatable KEY=VALUE options add up).
import { describe, expect, it } from 'vitest';
import { parseRbdSpec } from '../../src/cli/rbd-spec.js';
import { paramsFromArgs } from '../../src/cli/rpc_args.js';
import { UsageError } from '../../src/errors.js';

describe('--rbd POOL/IMAGE[,...]', () => {
  it('takes the pool and image first, then keys; the image names the bdev', () => {
    expect(parseRbdSpec('vms/db01')).toEqual({
      pool: 'vms',
      image: 'db01',
      name: 'db01',
      blockSize: 512,
      readonly: false,
      conf: undefined,
      id: undefined,
      keyFile: undefined,
      timeout: undefined,
      description: undefined,
    });
    expect(parseRbdSpec('vms/db01,conf=/etc/ceph/c.conf,id=aionbd,keyfile=/k,name=d1,bs=4K,readonly,timeout=10,description=db')).toEqual({
      pool: 'vms',
      image: 'db01',
      name: 'd1',
      blockSize: 4096,
      readonly: true,
      conf: '/etc/ceph/c.conf',
      id: 'aionbd',
      keyFile: '/k',
      timeout: 10,
      description: 'db',
    });
    expect(parseRbdSpec('p/a image@x').name).toBe('a_image_x');
  });

  it('refuses what it cannot use, in one line', () => {
    const bad: [string, RegExp][] = [
      ['db01', /the pool and image come first, as POOL\/IMAGE/],
      ['/db01', /POOL\/IMAGE/],
      ['vms/', /POOL\/IMAGE/],
      ['a/b/c', /POOL\/IMAGE/],
      ['vms/db,bs=3000', /bs must be a power of two from 512 to 64K/],
      ['vms/db,timeout=0', /timeout is whole seconds from 1 to 3600/],
      ['vms/db,conf', /conf needs a value/],
      ['vms/db,pool=x', /unknown key "pool"/],
      ['vms/db,name=-x', /bad bdev name/],
    ];
    for (const [spec, re] of bad) {
      expect(() => parseRbdSpec(spec), spec).toThrow(UsageError);
      expect(() => parseRbdSpec(spec), spec).toThrow(re);
    }
  });
});

describe('rpc.py forms of the RBD methods', () => {
  it('bdev_rbd_register_cluster: repeated --config-param add up', () => {
    expect(
      paramsFromArgs('bdev_rbd_register_cluster', [
        'c0',
        '--config-param',
        'mon_host=127.0.0.1:3300',
        '--config-param',
        'rados_osd_op_timeout=10',
        '--user-id',
        'aionbd',
        '--key-file',
        '/k',
        '--config-file=/etc/ceph/ceph.conf',
      ]),
    ).toEqual({
      name: 'c0',
      user_id: 'aionbd',
      key_file: '/k',
      config_file: '/etc/ceph/ceph.conf',
      config_param: { mon_host: '127.0.0.1:3300', rados_osd_op_timeout: '10' },
    });
    expect(() => paramsFromArgs('bdev_rbd_register_cluster', ['c0', '--config-param', 'novalue'])).toThrow(
      /--config-param takes KEY=VALUE, not "novalue"/,
    );
  });

  it('bdev_rbd_create POOL IMAGE BLOCK_SIZE with a cluster, or a connection of its own', () => {
    expect(paramsFromArgs('bdev_rbd_create', ['rbd', 'img', '4096', '-c', 'c0', '-b', 'r0', '-r'])).toEqual({
      pool_name: 'rbd',
      rbd_name: 'img',
      block_size: 4096,
      cluster_name: 'c0',
      name: 'r0',
      read_only: true,
    });
    expect(paramsFromArgs('bdev_rbd_create', ['rbd', 'img', '512', '--user-id', 'u', '--config', 'a=1', '--config', 'b=x=y'])).toEqual({
      pool_name: 'rbd',
      rbd_name: 'img',
      block_size: 512,
      user_id: 'u',
      config: { a: '1', b: 'x=y' },
    });
    expect(() => paramsFromArgs('bdev_rbd_create', ['rbd', 'img'])).toThrow(/missing BLOCK_SIZE/);
  });

  it('bdev_rbd_resize NAME MIB; delete, unregister and info by name', () => {
    expect(paramsFromArgs('bdev_rbd_resize', ['r0', '2048'])).toEqual({ name: 'r0', new_size: 2048 });
    expect(paramsFromArgs('bdev_rbd_resize', ['r0', '2G'])).toEqual({ name: 'r0', new_size: 2048 });
    expect(paramsFromArgs('bdev_rbd_delete', ['r0'])).toEqual({ name: 'r0' });
    expect(paramsFromArgs('bdev_rbd_unregister_cluster', ['c0'])).toEqual({ name: 'c0' });
    expect(paramsFromArgs('bdev_rbd_get_clusters_info', ['-b', 'c0'])).toEqual({ name: 'c0' });
    expect(paramsFromArgs('bdev_rbd_get_clusters_info', [])).toEqual({});
  });
});
