// The socket file of a unix listener (NBD or JSON-RPC): what may stand at its path before
// bind(), a stale socket cleared, the file made mode 0600 from its creation, and a failed
// bind() explained (libuv reports a missing directory as EACCES).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { constants } from 'node:os';
import { ListenError, UsageError } from '../errors.js';

/** sun_path holds 108 bytes with its NUL; a longer path would be silently cut by libuv. */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Refuses a path no socket can be bound at (too long, no such directory, something other than
 * a socket in the way) and removes a socket file that nobody answers on. A live socket is left
 * for bind() to report as in use.
 */
export async function claimSocketPath(address: string, p: string): Promise<void> {
  checkSocketPath(address, p);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  } // gone meanwhile: bind() says what is wrong
  if (!st.isSocket()) return;
  const state = await probe(p);
  if (state === 'alive') return;
  if (state === 'forbidden') {
    throw listenError(address, `${p} is a socket this user may not connect to, so it may be live: left alone`, 'EACCES');
  }
  try {
    fs.rmSync(p, { force: true });
  } catch (err) {
    throw new ListenError(
      address,
      err as NodeJS.ErrnoException,
      `${p} is a stale socket that cannot be removed (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/** The checks of claimSocketPath that need no connection: for a start-up that fails before it creates anything. */
export function checkSocketPath(address: string, p: string): void {
  const bytes = Buffer.byteLength(p);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new UsageError(
      `cannot listen on ${address}: the path is ${bytes} bytes; a unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`,
    );
  }
  const why = pathProblem(p);
  if (why !== null) throw listenError(address, why.text, why.code);
}

/** Binds `server` at `p` with the socket file mode 0600 from the start (no window for other users). */
export async function listenUnix(server: net.Server, address: string, p: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EACCES' || err.code === 'ENOENT' || err.code === 'ENOTDIR' ? pathProblem(p) : null;
      reject(why !== null ? listenError(address, why.text, why.code, err) : new ListenError(address, err));
    });
    // bind() inside listen() creates the file: a umask that leaves only the owner bits closes
    // the window in which another user could connect before the chmod below.
    const old = process.umask(0o177);
    try {
      server.listen(p, () => resolve());
    } finally {
      process.umask(old);
    }
  });
  fs.chmodSync(p, 0o600);
}

/** Why nothing can be bound at `p`, or null when bind() may be tried. */
function pathProblem(p: string): { text: string; code: string } | null {
  const dir = path.dirname(p);
  try {
    if (!fs.statSync(dir).isDirectory()) return { text: `${dir} is not a directory`, code: 'ENOTDIR' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { text: `directory ${dir} does not exist`, code };
    if (code === 'ENOTDIR') return { text: `a parent of ${dir} is not a directory`, code };
    return null; // EACCES and the like: bind() reports them as they are
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return null;
  }
  if (st.isSocket()) return null;
  return { text: `${p} exists and is ${kind(st)}, not a socket (left alone)`, code: 'EEXIST' };
}

function kind(st: fs.Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'a device';
  return 'not a file';
}

function listenError(address: string, why: string, code: string, cause?: NodeJS.ErrnoException): ListenError {
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  // The errno is the one the text describes (ENOENT for a missing directory), not libuv's EACCES.
  const err: NodeJS.ErrnoException = Object.assign(new Error(why, cause !== undefined ? { cause } : {}), {
    code,
    errno: errno !== undefined ? -errno : undefined,
  });
  return new ListenError(address, err, why);
}

// Only a refused connection proves a socket dead; one we may not connect to could be live.
function probe(p: string): Promise<'alive' | 'dead' | 'forbidden'> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve('alive');
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EACCES' || err.code === 'EPERM' ? 'forbidden' : 'dead'));
  });
}
