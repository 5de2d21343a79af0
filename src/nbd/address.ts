// Listen addresses: tcp://HOST:PORT and unix:PATH (unix://PATH is accepted too).
import { UsageError } from '../errors.js';
import { DEFAULT_PORT } from './constants.js';

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseListenAddress(s: string): ListenAddress {
  if (s.startsWith('unix://')) return unixAddr(s.slice('unix://'.length), s);
  if (s.startsWith('unix:')) return unixAddr(s.slice('unix:'.length), s);
  const rest = s.startsWith('tcp://') ? s.slice('tcp://'.length) : s;
  // [v6]:port, host:port, or a bare host (default port).
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:[\]]*)(?::(\d+))?$/.exec(rest);
  if (m === null) throw new UsageError(`bad listen address "${s}": use tcp://HOST:PORT or unix:PATH`);
  const host = m[1] === '' || m[1] === undefined ? '127.0.0.1' : m[1];
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bad port in listen address "${s}"`);
  return { kind: 'tcp', host, port };
}

function unixAddr(path: string, s: string): ListenAddress {
  if (path === '') throw new UsageError(`bad listen address "${s}": the unix socket path is empty`);
  return { kind: 'unix', path };
}

export function formatAddress(a: ListenAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `tcp://[${a.host}]:${a.port}` : `tcp://${a.host}:${a.port}`;
}

/** An NBD URI for an export at this address (as nbdinfo, nbdcopy and qemu accept). */
export function nbdUri(a: ListenAddress, exportName: string): string {
  const name = encodeURIComponent(exportName);
  if (a.kind === 'unix') return `nbd+unix:///${name}?socket=${a.path}`;
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `nbd://${host}:${a.port}/${name}`;
}
