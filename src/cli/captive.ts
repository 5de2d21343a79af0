// Captive mode, as nbdkit's --run: the server runs a shell command that uses it and lives exactly
// as long as that command. The command gets nbdkit's shell variables, so recipes written for
// nbdkit work unchanged (`--run 'nbdcopy "$uri" out.img'`, `--run 'qemu-img convert $nbd x.qcow2'`).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SystemError } from '../errors.js';
import type { Logger } from '../log.js';
import { nbdUri, type ListenAddress } from '../nbd/address.js';
import type { TlsMode } from '../nbd/handshake.js';

/** The shell variables the command sees, named as nbdkit names them, plus our $socket and $export. */
export function captiveVariables(addr: ListenAddress, exportName: string, tls: TlsMode): Record<string, string> {
  let uri = nbdUri(addr, exportName);
  // A client must not try plaintext against a server that refuses it: nbds:// makes it start TLS.
  if (tls === 'require') uri = uri.replace(/^nbd/, 'nbds');
  const socket = addr.kind === 'unix' ? addr.path : '';
  return {
    uri,
    nbd: uri, // nbdkit >= 1.24 gives $nbd the same URI
    socket,
    unixsocket: socket,
    port: addr.kind === 'tcp' ? String(addr.port) : '',
    export: exportName,
    exportname: exportName,
    tls: tls === 'on' ? '1' : tls === 'require' ? '2' : '',
  };
}

/** Single quotes keep every byte as it is; a quote inside becomes '\'' (close, escaped quote, reopen). */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The script sh runs: the variables set as plain shell variables (as nbdkit does: local to the
 * command unless it says `export uri`), then the command as the user wrote it.
 */
export function captiveScript(command: string, vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return `${lines.join('\n')}\n${command}`;
}

export interface CaptiveCommand {
  /** The exit status the process should end with: the command's own, or 128 + the signal that ended it. */
  readonly exited: Promise<number>;
  /** Passes a signal on to the command (a stop asked of us is asked of it). */
  signal(sig: NodeJS.Signals): void;
}

/** Starts `command` under /bin/sh with our stdin, stdout and stderr (it may be interactive: guestfish, qemu). */
export function runCaptive(command: string, vars: Record<string, string>, log: Logger): CaptiveCommand {
  const child = spawn('/bin/sh', ['-c', captiveScript(command, vars)], { stdio: 'inherit' });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(new SystemError(`cannot run the --run command with /bin/sh: ${err.code ?? err.message}`, -(err.errno ?? -5), { cause: err }));
    });
    child.once('exit', (code, sig) => {
      if (sig !== null) {
        const n = os.constants.signals[sig];
        log.warn({ signal: sig }, 'the --run command was killed by a signal');
        resolve(128 + n);
      } else {
        resolve(code ?? 1);
      }
    });
  });
  return {
    exited,
    signal: (sig) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      // The shell may not have exec'd the command (a script of several commands does not): what
      // it runs gets the signal too, or a stopped shell would leave its command running on.
      for (const pid of [child.pid, ...descendants(child.pid)]) {
        try {
          process.kill(pid, sig);
        } catch {
          /* it has exited meanwhile */
        }
      }
    },
  };
}

/** Every process below `root`, from /proc (Linux): a snapshot; one that forks meanwhile may be missed. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    } // exited meanwhile
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid);
    if (list === undefined) children.set(ppid, [Number(e)]);
    else list.push(Number(e));
  }
  const out: number[] = [];
  for (let i = 0, queue = [root]; i < queue.length && out.length < 100_000; i++) {
    for (const c of children.get(queue[i] ?? -1) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** A private socket for a captive server given no --listen: only the command is meant to reach it. */
export class PrivateSocket {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aionbd-')); // mode 0700
  readonly path = path.join(this.dir, 'socket');

  /** Removes the directory (and the socket, if the server left it). */
  remove(): void {
    fs.rmSync(this.path, { force: true });
    try {
      fs.rmdirSync(this.dir);
    } catch {
      /* something else was put there: leave it */
    }
  }
}
