// The metrics endpoint (--metrics tcp://HOST:PORT): GET /metrics answers in Prometheus's text
// format, built at each scrape. Plain HTTP, as Prometheus scrapes; any address the operator
// gives is used (a non-loopback one exposes the bdev names and counters to that network).
import http from 'node:http';
import type net from 'node:net';
import type { Registry } from 'prom-client';
import { ListenError, UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatAddress, parseListenAddress, type ListenAddress } from '../nbd/address.js';

export interface MetricsListener {
  /** The bound address (a port 0 becomes the real port). */
  readonly address: ListenAddress & { kind: 'tcp' };
  /** The URL Prometheus scrapes. */
  readonly url: string;
  close(): Promise<void>;
}

/** tcp://HOST:PORT with an explicit port (the NBD default port would be a surprise here). */
export function parseMetricsAddress(s: string): ListenAddress & { kind: 'tcp' } {
  const a = parseListenAddress(s);
  if (a.kind !== 'tcp' || !/:\d+\/?$/.test(s))
    throw new UsageError(`bad metrics address "${s}": use tcp://HOST:PORT (Prometheus scrapes HTTP over TCP)`);
  return a;
}

export async function listenMetrics(
  addr: string | (ListenAddress & { kind: 'tcp' }),
  registry: Registry,
  log: Logger,
): Promise<MetricsListener> {
  const a = typeof addr === 'string' ? parseMetricsAddress(addr) : addr;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('aionbd: Prometheus metrics are at /metrics\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        log.warn({ err }, 'metrics: collecting failed');
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('collecting the metrics failed; see the server log\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(formatAddress(a), err)));
    server.listen({ host: a.host, port: a.port }, () => resolve());
  });
  server.on('error', (err) => log.error({ err }, 'metrics listener error'));
  const bound = { ...a, port: (server.address() as net.AddressInfo).port };
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  const url = `http://${host}:${bound.port}/metrics`;
  log.info({ url }, 'serving metrics');
  return {
    address: bound,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        // Prometheus keeps its connection open between scrapes: close those too, or close() waits on them.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
