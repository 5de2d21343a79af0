// Images (and their directories) that a start-up created, so that a failed start leaves
// nothing it made: a port in use must not leave a fresh aionbd-data/disk0.img behind.
import fs from 'node:fs';
import path from 'node:path';

interface Made {
  file: string;
  dev: number;
  ino: number;
  dirs: string[];
}

export class CreatedFiles {
  readonly #made: Made[] = [];
  #pending: { file: string; dirs: string[] } | null = null;

  /** Call before the bdev over `file` is created: notes whether the file and its directories exist. */
  before(file: string): void {
    const abs = path.resolve(file);
    if (exists(abs)) {
      this.#pending = null;
      return;
    }
    const dirs: string[] = [];
    for (let d = path.dirname(abs); !exists(d) && d !== path.dirname(d); d = path.dirname(d)) dirs.push(d);
    this.#pending = { file: abs, dirs };
  }

  /** Call once the bdev is created: a file that was missing before is ours (judged by inode, not name). */
  after(): void {
    const p = this.#pending;
    this.#pending = null;
    if (p === null) return;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p.file);
    } catch {
      return;
    }
    if (st.isFile()) this.#made.push({ file: p.file, dev: st.dev, ino: st.ino, dirs: p.dirs });
  }

  /** Removes what was made, newest first; a file replaced since (another inode) is left alone. */
  undo(): void {
    for (const m of this.#made.splice(0).reverse()) {
      try {
        const st = fs.lstatSync(m.file);
        if (st.dev === m.dev && st.ino === m.ino) fs.unlinkSync(m.file);
      } catch {
        /* gone already */
      }
      // Innermost first; rmdir refuses a directory something else has put files in.
      for (const d of m.dirs) {
        try {
          fs.rmdirSync(d);
        } catch {
          break;
        }
      }
    }
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
