// `aionbd iostat [-s SOCK] [-b BDEV] [-i SECONDS] [-c COUNT]`: live per-bdev statistics, as
// SPDK's scripts/iostat.py shows them, from bdev_get_iostat samples over the JSON-RPC socket.
// On a terminal the table is redrawn in place; otherwise each report is plain lines.
import type { Command } from 'commander';
import { rpcCall } from '../rpc/client.js';
import { collect, intArg, secondsArg } from './args.js';
import { formatTable, readSample, rows, type Sample } from './iostat_report.js';
import { DEFAULT_RPC_SOCKET } from './serve.js';

interface IostatOptions {
  socket: string;
  name: string[];
  interval?: number;
  count?: number;
}

export function addIostatCommand(program: Command, out: (line: string) => void): void {
  program
    .command('iostat')
    .description(
      'live per-bdev I/O statistics of a running "aionbd serve" (IOPS, MiB/s, mean and p99 latency, queue depth), like SPDK\'s iostat.py',
    )
    .option('-s, --socket <path>', "the server's JSON-RPC socket", DEFAULT_RPC_SOCKET)
    .option('-b, --name <bdev>', 'only this bdev (repeatable; default: every bdev)', collect, [])
    .option('-i, --interval <seconds>', 'seconds per report (default 1)', secondsArg(0.1, 86_400))
    .option('-c, --count <n>', 'stop after this many reports (default: 1 without -i, else until Ctrl-C)', intArg(1, 1_000_000_000))
    .action(async (o: IostatOptions) => {
      const tty = process.stdout.isTTY;
      const seconds = o.interval ?? 1;
      const count = o.count ?? (o.interval === undefined ? 1 : Infinity);
      const params = { ...(o.name.length > 0 ? { names: o.name } : {}), latency_histograms: true };
      const sample = async (): Promise<Sample> => readSample(await rpcCall(o.socket, 'bdev_get_iostat', params, 10_000));

      // Ctrl-C ends the reports (exit 0) rather than killing the process mid-line.
      let stop: () => void = () => undefined;
      const stopped = new Promise<void>((resolve) => {
        stop = resolve;
      });
      let interrupted = false;
      const onSigint = (): void => {
        interrupted = true;
        stop();
      };
      process.on('SIGINT', onSigint);
      try {
        let prev = await sample();
        let drawn = 0;
        for (let n = 0; n < count && !interrupted; n++) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            stopped,
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, seconds * 1000);
            }),
          ]);
          clearTimeout(timer);
          if (interrupted) break;
          const cur = await sample();
          const table = formatTable(rows(prev, cur));
          prev = cur;
          if (!tty) {
            for (const l of table) out(l);
            out('');
            continue;
          }
          // Back over the previous report, clear to the end of the screen, draw this one.
          const title = `aionbd iostat  ${new Date().toTimeString().slice(0, 8)}  every ${seconds} s  (${o.socket}; Ctrl-C to stop)`;
          process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\r\x1b[J` : ''}${[title, ...table].join('\n')}\n`);
          drawn = table.length + 1;
        }
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
