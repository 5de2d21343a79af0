#!/usr/bin/env node
// Throws random and mutated input at real aionbd servers (child processes on unix sockets, in a
// temporary directory) and checks that they survive: no crash, no hang (a health check must pass
// regularly), no leaked file descriptors or AIO contexts, bounded memory. Three parts, each with
// a server of its own:
//
//   nbd  random and mutated NBD option and transmission frames (scripts/fuzz/nbd.mjs)
//   tls  STARTTLS gone wrong against a server requiring TLS with X.509 client certificates
//        (--tls-ca; a CA, server and client certificates and a self-signed rogue client
//        certificate are made with openssl at run time) and PSK: data with STARTTLS, STARTTLS
//        twice, options before and after, garbage instead of a ClientHello, flipped, cut,
//        replayed or padded TLS records, closes mid-handshake, clients with no, an untrusted or a
//        trusted certificate or a right or wrong key, then random options and requests inside
//        TLS. A connection that gets NBD_OPT_GO acknowledged or a transmission reply without an
//        authorized credential is reported as a finding (scripts/fuzz/tls.mjs)
//   rpc  the JSON-RPC socket: garbage and garbled JSON, huge strings, deep nesting, batches, many
//        pipelined requests, every method (from rpc_get_methods, less those that attach the
//        kernel or load configs) with params of wrong types, half-closes and abrupt closes; every
//        request gets an answer or a clean close. Paths stay in the temporary directory, and
//        what the NBD side needs is never deleted (scripts/fuzz/rpc.mjs)
//
//   node scripts/fuzz.mjs [--parts nbd,tls,rpc] [--frames N] [--tls-conns N] [--rpc-conns N]
//                         [--require-auth] [--seed S] [--quiet]
//
//   --parts         which parts, in that order (default: all three)
//   --frames        NBD frames to send (default 1000000)
//   --tls-conns     TLS fuzz connections (default 2000)
//   --rpc-conns     JSON-RPC fuzz connections (default 2000)
//   --require-auth  an authentication bypass fails the run (without it, it is reported as a
//                   FINDING line and the run still passes)
//   --seed          replay a run: each part draws from its own generator seeded from S, so a part
//                   run alone replays what it did in a run of all three
//   --quiet         no progress lines
//
// Exit 0 when every check passed; 1 with the reason (and the seed) otherwise. The last line is a
// summary. FUZZ_DEBUG=1 logs the servers at debug level to /tmp/fuzz-<part>.log.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FuzzFailure, makeRng } from './fuzz/common.mjs';
import { fuzzNbd } from './fuzz/nbd.mjs';
import { fuzzRpc } from './fuzz/rpc.mjs';
import { fuzzTls } from './fuzz/tls.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const PARTS = opt('--parts', 'nbd,tls,rpc')
  .split(',')
  .filter((p) => p !== '');
const SEED = Number(opt('--seed', String(Date.now() % 2 ** 31)));
const QUIET = args.includes('--quiet');
const PART_SEED = { nbd: 0, tls: 0x7b1c, rpc: 0x2bc4 };

async function main() {
  for (const p of PARTS)
    if (!(p in PART_SEED)) {
      console.error(`fuzz: unknown part ${p} (nbd, tls, rpc)`);
      process.exit(2);
    }
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir(), 'aionbd-fuzz-'));
  const findings = [];
  try {
    for (const part of PARTS) {
      const r = makeRng((SEED + PART_SEED[part]) >>> 0);
      if (part === 'nbd') console.log(await fuzzNbd(r, dir, { frames: Number(opt('--frames', '1000000')), quiet: QUIET }));
      const run =
        part === 'tls'
          ? fuzzTls(r, dir, { conns: Number(opt('--tls-conns', '2000')), quiet: QUIET, requireAuth: args.includes('--require-auth') })
          : part === 'rpc'
            ? fuzzRpc(r, dir, { conns: Number(opt('--rpc-conns', '2000')), quiet: QUIET })
            : null;
      if (run === null) continue;
      const { summary, findings: f } = await run;
      console.log(summary);
      findings.push(...f);
    }
  } catch (e) {
    console.error(`fuzz: FAILED (seed ${SEED}): ${e instanceof Error ? e.message : String(e)}`);
    // A fuzzer bug (not a finding about the server) shows its stack.
    if (!(e instanceof FuzzFailure) && (e?.code === undefined || process.env.FUZZ_DEBUG)) console.error(e);
    console.log('0 passed, 1 failed');
    process.exitCode = 1;
    return;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const f of findings) console.log(`fuzz: FINDING (seed ${SEED}): ${f}`);
  console.log(`fuzz: seed ${SEED}, parts ${PARTS.join(',')}`);
  console.log('1 passed, 0 failed');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
