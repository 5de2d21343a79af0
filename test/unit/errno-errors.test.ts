// The errors that carry the errno their caller got (ErrnoError): each keeps its own code, and
// an RPC client sees -errno, strerror and that code.
import { describe, expect, it } from 'vitest';
import { RbdError } from '../../src/modules/rbd/errors.js';
import { AionbdError, ErrnoError, NbdKernelError, SystemError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { toRpcError } from '../../src/rpc/protocol.js';

describe('ErrnoError', () => {
  const cause = new Error('the native call');
  const cases = [
    [new SystemError('cannot open /x', 2, { cause }), 'SystemError', 'AIONBD_SYSTEM', 2],
    [new RbdError('rbd_open pool/img', 108, { cause }), 'RbdError', 'AIONBD_RBD', 108],
    [new NbdKernelError('NBD_CMD_CONNECT', 22), 'NbdKernelError', 'AIONBD_NBD_KERNEL', 22],
  ] as const;

  it.each(cases)('%s keeps its name, code, errno and cause', (err, name, code, errno) => {
    expect(err).toBeInstanceOf(ErrnoError);
    expect(err).toBeInstanceOf(AionbdError);
    expect([err.name, err.code, err.errno, err.exitCode]).toEqual([name, code, errno, 1]);
    if (!(err instanceof NbdKernelError)) expect(err.cause).toBe(cause);
  });

  it.each(cases)('%s reaches an RPC client as -errno with its code', (err, _name, code, errno) => {
    const r = toRpcError(err, silentLogger());
    expect(r.code).toBe(-errno);
    expect(r.data).toMatchObject({ code });
    expect(r.message.endsWith(`: ${err.message}`)).toBe(true);
  });

  it('the three are apart: one is never taken for another', () => {
    const [sys, rbd, kern] = cases.map((c) => c[0]);
    expect(rbd).not.toBeInstanceOf(SystemError);
    expect(kern).not.toBeInstanceOf(SystemError);
    expect(sys).not.toBeInstanceOf(RbdError);
  });
});
