// The limits a server runs under: the process's open-file limit (raised to its hard limit when
// asked) and the connection limit sized from it, gathered once so the start-up log can say them.
import { native } from '../native.js';
import { formatSize } from '../util/size.js';
import { maxConnectionsFor } from './admission.js';

export interface ServerLimits {
  /** RLIMIT_NOFILE's soft limit in effect (-1: unlimited). */
  openFiles: number;
  /** Its hard limit (-1: unlimited). */
  openFilesHard: number;
  /** The soft limit before the server raised it (equal to openFiles when it did not). */
  openFilesBefore: number;
  /** errno of a raise the kernel refused, else 0. */
  raiseError: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
  memoryBudget: number;
  requestsPerConnection: number;
}

/**
 * Reads RLIMIT_NOFILE (raising its soft limit to the hard one first when `raise`) and sizes the
 * default connection limit from what is in effect; a limit given explicitly wins.
 */
export function openFileLimits(
  raise: boolean,
  maxConnections: number | undefined,
): Pick<ServerLimits, 'openFiles' | 'openFilesHard' | 'openFilesBefore' | 'raiseError' | 'maxConnections'> {
  const f = native().fileLimit(raise);
  return {
    openFiles: f.soft,
    openFilesHard: f.hard,
    openFilesBefore: f.before,
    raiseError: f.error,
    maxConnections: maxConnections ?? maxConnectionsFor(f.soft),
  };
}

const count = (n: number): string => (n < 0 ? 'unlimited' : String(n));

/** One line for the start-up log. */
export function describeLimits(l: ServerLimits): string {
  const raised = l.openFilesBefore !== l.openFiles ? `, raised from ${count(l.openFilesBefore)}` : '';
  const refused = l.raiseError !== 0 ? `; raising it to the hard limit failed (errno ${l.raiseError})` : '';
  return (
    `limits: ${count(l.openFiles)} open files (hard limit ${count(l.openFilesHard)}${raised}${refused}), ` +
    `${l.maxConnections} connections (${l.maxConnectionsPerClient} per TCP client address), ` +
    `${l.requestsPerConnection} requests in flight per connection, memory budget ${formatSize(l.memoryBudget)}`
  );
}
