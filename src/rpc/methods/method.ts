// The makers of the core's methods (src/rpc/methods/*): their handlers get the RpcHost.
import { methodsFor } from '../../method.js';
import type { RpcHost } from '../dispatcher.js';

export const { method, method0 } = methodsFor<RpcHost>();
