// Reads a kernel's module indexes (modules.dep, .builtin, .alias, .softdep, as depmod writes
// them) and orders the modules to insmod, as modprobe would, for an initramfs without modprobe.

import { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';

export interface ModuleIndex {
  /** Normalised module name -> path relative to the version directory. */
  paths: Map<string, string>;
  /** Relative path -> relative paths of its dependencies. */
  deps: Map<string, string[]>;
  builtin: Set<string>;
  /** Exact (wildcard-free) aliases -> module names. */
  aliases: Map<string, string[]>;
  softPre: Map<string, string[]>;
  softPost: Map<string, string[]>;
}

/** Module names treat '-' and '_' as the same character. */
export function normaliseModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** The module name of a module file (kernel/fs/ext4/ext4.ko.xz: ext4). */
export function moduleNameOfPath(path: string): string {
  return normaliseModuleName(basename(path).replace(/\.ko(\.(xz|gz|zst))?$/, ''));
}

function pushTo(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** The indexes of the module tree of one kernel (its lib/modules/<version> directory). */
export async function readModuleIndex(versionDir: string): Promise<ModuleIndex> {
  const idx: ModuleIndex = {
    paths: new Map(),
    deps: new Map(),
    builtin: new Set(),
    aliases: new Map(),
    softPre: new Map(),
    softPost: new Map(),
  };
  const read = async (f: string): Promise<string[]> => {
    try {
      return (await fsp.readFile(join(versionDir, f), 'utf8')).split('\n');
    } catch {
      return [];
    }
  };
  for (const line of await read('modules.dep')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    idx.paths.set(moduleNameOfPath(path), path);
    idx.deps.set(
      path,
      line
        .slice(colon + 1)
        .split(/\s+/)
        .filter((s) => s !== ''),
    );
  }
  for (const line of await read('modules.builtin')) {
    if (line.trim() !== '') idx.builtin.add(moduleNameOfPath(line.trim()));
  }
  for (const line of await read('modules.alias')) {
    const m = /^alias\s+(\S+)\s+(\S+)/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && !/[*?[]/.test(m[1])) {
      pushTo(idx.aliases, m[1], normaliseModuleName(m[2]));
    }
  }
  for (const line of await read('modules.softdep')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined) continue;
    const owner = normaliseModuleName(m[1]);
    let target: Map<string, string[]> | undefined;
    for (const word of m[2].split(/\s+/)) {
      if (word === 'pre:') target = idx.softPre;
      else if (word === 'post:') target = idx.softPost;
      else if (word !== '' && target !== undefined) pushTo(target, owner, word);
    }
  }
  return idx;
}

/**
 * Orders the module files to insmod for `wanted`: each module after its hard
 * dependencies and its soft "pre" dependencies (ext4 wants crc32c, which is an
 * alias), built-in modules left out. Throws if a wanted module is neither a
 * file nor built in.
 */
export function resolveModuleOrder(
  idx: ModuleIndex,
  wanted: readonly string[],
  /** Module paths already ordered (by an earlier call): left out. */
  done: Set<string> = new Set(),
): string[] {
  const order: string[] = [];

  const namesFor = (name: string): string[] => {
    const n = normaliseModuleName(name);
    if (idx.paths.has(n) || idx.builtin.has(n)) return [n];
    return idx.aliases.get(name) ?? idx.aliases.get(n) ?? [];
  };
  const visitPath = (path: string): void => {
    if (done.has(path)) return;
    done.add(path);
    const name = moduleNameOfPath(path);
    for (const s of idx.softPre.get(name) ?? []) visitSoft(s);
    for (const d of idx.deps.get(path) ?? []) visitPath(d);
    order.push(path);
    for (const s of idx.softPost.get(name) ?? []) visitSoft(s);
  };
  const visitName = (name: string): boolean => {
    if (idx.builtin.has(name)) return true;
    const path = idx.paths.get(name);
    if (path === undefined) return false;
    visitPath(path);
    return true;
  };
  // A soft dependency that does not exist is not an error (that is what soft means).
  const visitSoft = (name: string): void => {
    for (const n of namesFor(name)) visitName(n);
  };

  for (const w of wanted) {
    const names = namesFor(w);
    if (names.length === 0 || !names.every((n) => visitName(n))) {
      throw new Error(`kernel module ${w} is neither a module file nor built in`);
    }
  }
  return order;
}
