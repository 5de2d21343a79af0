#!/usr/bin/env node
// Prints 1 when the addon can be built with the RBD bdev (librbd's and librados's headers are
// installed, Debian's librbd-dev) and AIONBD_NO_RBD is unset, else 0. binding.gyp reads it, and
// build-native.mjs compares it with the last build's.
import fs from 'node:fs';

const HEADERS = ['/usr/include/rbd/librbd.h', '/usr/include/rados/librados.h'];
const off = (process.env['AIONBD_NO_RBD'] ?? '') !== '';
process.stdout.write(!off && HEADERS.every((h) => fs.existsSync(h)) ? '1' : '0');
