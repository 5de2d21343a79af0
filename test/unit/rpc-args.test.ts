// aionbd rpc's command-line forms: the SPDK guide's lines and today's rpc.py forms side by side,
// sizes with and without units, and the help that says which unit each form takes.
import { describe, expect, it } from 'vitest';
import { paramsFromArgs } from '../../src/cli/rpc_args.js';
import { methodHelp, usage } from '../../src/cli/rpc_help.js';
import { UsageError } from '../../src/errors.js';

const MiB = 2 ** 20;

describe('bdev_lvol_create', () => {
  const want = { lvs_name: 'lvs0', lvol_name: 'vol1', size_in_mib: 1024 };

  it("takes the older rpc.py form, -n NAME -s BYTES, and today's NAME MIB", () => {
    expect(paramsFromArgs('bdev_lvol_create', ['-l', 'lvs0', '-n', 'vol1', '-s', '1073741824'])).toEqual(want);
    expect(paramsFromArgs('bdev_lvol_create', ['vol1', '1024', '-l', 'lvs0'])).toEqual(want);
    expect(paramsFromArgs('bdev_lvol_create', ['-l', 'lvs0', 'vol1', '1024', '-t'])).toEqual({ ...want, thin_provision: true });
    expect(paramsFromArgs('bdev_lvol_create', ['--lvol-name=vol1', '--size=1073741824', '-u', 'u-1'])).toEqual({
      lvol_name: 'vol1',
      size_in_mib: 1024,
      uuid: 'u-1',
    });
  });

  it('takes a unit with any size, which then means what it says', () => {
    for (const words of [
      ['-n', 'vol1', '-s', '1G'],
      ['-n', 'vol1', '-s', '1024M'],
      ['vol1', '1G'],
      ['vol1', '--size-in-mib', '1G'],
      ['vol1', '--size-in-mib', '1024'],
    ]) {
      expect(paramsFromArgs('bdev_lvol_create', [...words, '-l', 'lvs0']), words.join(' ')).toEqual(want);
    }
  });

  it('rounds a byte size up to a whole MiB (the lvol is rounded up to clusters anyway)', () => {
    expect(paramsFromArgs('bdev_lvol_create', ['-n', 'v', '-s', String(MiB + 1), '-l', 'l'])).toMatchObject({ size_in_mib: 2 });
    expect(paramsFromArgs('bdev_lvol_create', ['-n', 'v', '-s', '1536K', '-l', 'l'])).toMatchObject({ size_in_mib: 2 });
  });

  it('refuses what it cannot read, a param given twice, and a missing name or size, in one line each', () => {
    const bad: [string[], RegExp][] = [
      [['-n', 'v', '-s', 'big', '-l', 'l'], /-s must be a whole number of bytes or a size with a unit \(512K, 256M, 1G\), not "big"/],
      [['v', '1.5', '-l', 'l'], /MIB must be a whole number of MiB or a size with a unit/],
      [['v', '1536K', '-l', 'l'], /MIB 1536K is not a whole number of MiB/],
      [['vol1', '-n', 'vol2', '1024', '-l', 'l'], /NAME and -n both give lvol_name/],
      [['vol1', '1024', '-s', '1G', '-l', 'l'], /MIB and -s both give size_in_mib/],
      [['-n', 'vol1', '-l', 'l'], /missing size_in_mib: give MIB, -s BYTES or --size-in-mib MIB/],
      [['-s', '1G', '-l', 'l'], /missing lvol_name: give NAME or -n NAME/],
    ];
    for (const [words, msg] of bad) {
      expect(() => paramsFromArgs('bdev_lvol_create', words), words.join(' ')).toThrow(msg);
      expect(() => paramsFromArgs('bdev_lvol_create', words)).toThrow(UsageError);
    }
  });
});

describe('bdev_error_create', () => {
  it("BASE alone is SPDK's form (the bdev is EE_BASE); BASE NAME names it", () => {
    expect(paramsFromArgs('bdev_error_create', ['aio_test'])).toEqual({ base_name: 'aio_test' });
    expect(paramsFromArgs('bdev_error_create', ['aio_test', 'error_test'])).toEqual({ base_name: 'aio_test', name: 'error_test' });
    expect(paramsFromArgs('bdev_error_create', ['aio_test', '--uuid', 'u-1'])).toEqual({ base_name: 'aio_test', uuid: 'u-1' });
    expect(() => paramsFromArgs('bdev_error_create', ['a', 'b', 'c'])).toThrow(
      /too many arguments \(bdev_error_create BASE \[NAME\] \[--uuid UUID\]\)/,
    );
  });
});

describe('sizes elsewhere', () => {
  it('are read in the unit the form names, or the one given', () => {
    expect(paramsFromArgs('bdev_malloc_create', ['32', '512', '-b', 'm'])).toEqual({ name: 'm', block_size: 512, num_blocks: 65536 });
    expect(paramsFromArgs('bdev_malloc_create', ['1G', '4K'])).toEqual({ block_size: 4096, num_blocks: 262144 });
    expect(paramsFromArgs('bdev_split_create', ['m', '4', '-s', '64M'])).toEqual({ base_bdev: 'm', split_count: 4, split_size_mb: 64 });
    expect(paramsFromArgs('bdev_split_create', ['m', '4', '-s', '64'])).toMatchObject({ split_size_mb: 64 });
    expect(() => paramsFromArgs('bdev_split_create', ['m', '4', '-s', '1536K'])).toThrow(/-s 1536K is not a whole number of MiB/);
    expect(paramsFromArgs('bdev_lvol_create_lvstore', ['aio0', 'lvs', '-c', '1M'])).toEqual({
      bdev_name: 'aio0',
      lvs_name: 'lvs',
      cluster_sz: MiB,
    });
    expect(paramsFromArgs('bdev_lvol_create_lvstore', ['aio0', 'lvs', '-c', '65536'])).toMatchObject({ cluster_sz: 65536 });
    expect(paramsFromArgs('bdev_aio_create', ['/dev/loop0', 'aio_disk1'])).toEqual({ filename: '/dev/loop0', name: 'aio_disk1' });
    expect(paramsFromArgs('bdev_aio_create', ['/f', 'a', '4K'])).toEqual({ filename: '/f', name: 'a', block_size: 4096 });
    expect(paramsFromArgs('bdev_lvol_resize', ['lvs/v', '2G'])).toEqual({ name: 'lvs/v', size_in_mib: 2048 });
  });
});

describe('aionbd rpc METHOD --help', () => {
  it('says which unit each form of a size takes', () => {
    const h = methodHelp('bdev_lvol_create');
    expect(h).toMatch(/^usage: aionbd rpc \[-s SOCK\] \[-t SEC\] bdev_lvol_create NAME MIB \(-l LVS \| -u UUID\)/);
    expect(h).toMatch(/bdev_lvol_create \(-l LVS \| -u UUID\) -n NAME -s BYTES/);
    expect(h).toMatch(/^ {2}MIB {2,}.*a bare number is MiB/m);
    expect(h).toMatch(/^ {2}-s, --size BYTES {2,}.*a bare number is bytes/m);
    expect(h).toMatch(/^ {2}--size-in-mib MIB {2,}.*a bare number is MiB/m);
    expect(usage('bdev_lvol_create')).toBe('bdev_lvol_create NAME MIB (-l LVS | -u UUID) [-t] [-c CLEAR_METHOD]');
  });

  it('says what the second argument of bdev_error_create is, and that SPDK has none', () => {
    const h = methodHelp('bdev_error_create');
    expect(h).toMatch(/bdev_error_create BASE \[NAME\] \[--uuid UUID\]/);
    expect(h).toMatch(/NAME is aionbd's own: SPDK's rpc.py takes only BASE and always names the bdev EE_BASE/);
  });

  it('points a method without a form to its JSON params', () => {
    expect(methodHelp('bdev_nonsense')).toMatch(/give its params as one JSON object/);
  });
});
