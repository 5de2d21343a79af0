// One LINK_DEAD listener per process, shared by every attached device that reconnects: the
// kernel multicasts "a connection of nbdN died and no disconnect was asked for" to all members
// of the family's group, so one socket serves them all.
import { native } from '../../native.js';
import type { NetlinkFamily } from './link.js';

/** Called with the device index, or with null when the kernel dropped events (check them all). */
export type LinkDeadListener = (index: number | null) => void;

const listeners = new Set<LinkDeadListener>();
let handle: { close(): void } | null = null;

/** Starts listening (if not yet) and adds fn; returns the function that removes it. */
export function onLinkDead(family: NetlinkFamily, fn: LinkDeadListener): () => void {
  if (family.mcastGroup === 0) return () => undefined; // a kernel without the group: nothing to hear
  if (handle === null) {
    const { CMD_LINK_DEAD, EVENTS_LOST, NO_INDEX } = native().constants.nbd;
    handle = new (native().nbd.Events)(family.id, family.mcastGroup, (cmd, index) => {
      if (cmd !== CMD_LINK_DEAD && cmd !== EVENTS_LOST) return;
      for (const l of [...listeners]) l(cmd === EVENTS_LOST || index === NO_INDEX ? null : index);
    });
  }
  listeners.add(fn);
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0 && handle !== null) {
      handle.close();
      handle = null;
    }
  };
}
