// The module descriptors, taken from the list's exports, and what is made of them for the
// embedded API: the table of low-level constructors.
import { isBdevModule, type BdevModule } from '../bdev/module.js';
import * as listed from './list.js';

type Listed = (typeof listed)[keyof typeof listed];
type Described = Extract<Listed, BdevModule>;

/**
 * Every module, by name: the order their examine hooks, save_config entries and close hooks run
 * and rpc_get_methods lists their methods (sorted, so it does not hang on how a loader orders
 * a namespace's keys).
 */
export const MODULES: readonly BdevModule[] = Object.values(listed)
  .flatMap((v) => (isBdevModule(v) ? [v] : []))
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** Each module's low-level constructor, by module name. */
export type BdevConstructors = { readonly [M in Described as M['create'] extends undefined ? never : M['name']]: NonNullable<M['create']> };

/**
 * Low-level constructors: each returns an unregistered bdev (split: several). Register them
 * in a BdevRegistry with their claims, or use Server's methods, which do both.
 */
export const bdevs = Object.fromEntries(MODULES.flatMap((m) => (m.create === undefined ? [] : [[m.name, m.create]]))) as BdevConstructors;
