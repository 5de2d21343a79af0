// `aionbd rpc [-s SOCK] [-t SEC] METHOD [args]`: rpc.py for aionbd. The result is printed as
// JSON (a string bare, as rpc.py does); a server error exits 1 with the server's message.
import fs from 'node:fs';
import type { Command } from 'commander';
import { secondsArg } from './args.js';
import { ConfigError, UsageError } from '../errors.js';
import { readConfigFile } from '../rpc/config.js';
import { rpcCall } from '../rpc/client.js';
import { paramsFromArgs } from './rpc_args.js';
import { methodHelp } from './rpc_help.js';
import { DEFAULT_RPC_SOCKET } from './serve.js';

/** Formats a result as rpc.py does: strings bare, everything else indented JSON. */
export function formatResult(result: unknown, indent = 2): string {
  return typeof result === 'string' ? result : JSON.stringify(result, null, indent);
}

// save_config and load_config keep rpc.py's own options: -i INDENT, and -j FILE (else stdin).
function clientSide(method: string, words: string[]): { params: unknown; indent: number } {
  let indent = 2;
  if (method === 'save_config') {
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (w === '-i' || w === '--indent') {
        indent = Number(words[++i]);
        continue;
      }
      throw new UsageError(`save_config: unknown argument ${w ?? ''} (save_config [-i INDENT])`);
    }
    if (!Number.isInteger(indent) || indent < 0 || indent > 10) throw new UsageError('save_config: -i takes 0..10');
    return { params: undefined, indent };
  }
  // load_config
  if (words.length === 0) return { params: configFromStdin(), indent };
  if (words.length === 2 && (words[0] === '-j' || words[0] === '--json-conf')) return { params: readConfigFile(words[1] ?? ''), indent };
  if (words.length === 1 && (words[0] ?? '').trimStart().startsWith('{')) return { params: paramsFromArgs(method, words), indent };
  throw new UsageError('load_config: give -j FILE, or the config on stdin');
}

// As -j FILE: a config that cannot be read or parsed is a ConfigError (exit 1), not a stack.
function configFromStdin(): unknown {
  let text: string;
  try {
    text = fs.readFileSync(0, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the config on stdin: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`the config on stdin is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

// save_config and load_config are rpc.py's client-side compositions, parsed by clientSide().
const CLIENT_SIDE_USAGE: Record<string, string> = {
  save_config:
    'usage: aionbd rpc [-s SOCK] [-t SEC] save_config [-i INDENT]\n\nPrints the running configuration as a config file (--config, load_config).',
  load_config: 'usage: aionbd rpc [-s SOCK] [-t SEC] load_config [-j FILE]\n\nApplies a config file, read from FILE or else from stdin.',
};

function helpFor(method: string): string {
  return CLIENT_SIDE_USAGE[method] ?? methodHelp(method);
}

export function addRpcCommand(program: Command, out: (line: string) => void): void {
  program
    .command('rpc')
    .description('call a JSON-RPC method of a running "aionbd serve", as SPDK\'s rpc.py does (e.g. aionbd rpc bdev_get_bdevs -b aio0)')
    .option('-s, --socket <path>', "the server's JSON-RPC socket", DEFAULT_RPC_SOCKET)
    .option('-t, --timeout <seconds>', 'give up after this long', secondsArg(0.001, 86_400), 60)
    .argument('<method>', 'the method, e.g. bdev_aio_create')
    .argument(
      '[args...]',
      "rpc.py's positional arguments and flags for the method, or its params as one JSON object (METHOD --help: its forms and units)",
    )
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (method: string, words: string[], o: { socket: string; timeout: number }) => {
      if (method.startsWith('-')) throw new UsageError(`unknown option '${method}' (options of rpc: -s, -t; the method comes next)`);
      // No method's form has a -h of its own: it asks for this method's help, as rpc.py's does.
      if (words.includes('--help') || words.includes('-h')) {
        out(helpFor(method));
        return;
      }
      const { params, indent } =
        method === 'save_config' || method === 'load_config'
          ? clientSide(method, words)
          : { params: paramsFromArgs(method, words), indent: 2 };
      const result = await rpcCall(o.socket, method, params, o.timeout * 1000);
      out(formatResult(result, indent));
    });
}
