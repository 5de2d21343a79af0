// The guest's console (the kernel's ttyS0 on QEMU's stdout, and QEMU's own stderr): split into
// lines, the last ones kept for error messages, each passed to VmOptions.log, and the first sign
// of a running guest noticed (the accelerator probe waits for it).

const CONSOLE_KEEP_LINES = 2_000;
/** Lines of console an error message ends with. */
export const ERROR_TAIL_LINES = 40;

/** Cuts a stream of text into lines (without their \r), the last one once it is complete. */
export class LineSplitter {
  private partial = '';
  constructor(private readonly emit: (line: string) => void) {}
  push(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.emit(l.replace(/\r$/, ''));
  }
  flush(): void {
    if (this.partial !== '') this.emit(this.partial.replace(/\r$/, ''));
    this.partial = '';
  }
}

/** The console lines of one VM. */
export class GuestConsole {
  private readonly lines: string[] = [];
  private started = false;

  constructor(
    private readonly logFn: ((line: string) => void) | undefined,
    /** Called once, at the first kernel line or the init's first word. */
    private readonly onStarted: () => void,
  ) {}

  /** The guest runs: the kernel (or our init) has printed something. */
  get kernelStarted(): boolean {
    return this.started;
  }

  tail(lines = ERROR_TAIL_LINES): string {
    return this.lines.slice(-lines).join('\n');
  }

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > CONSOLE_KEEP_LINES) this.lines.splice(0, this.lines.length - CONSOLE_KEEP_LINES);
    // A kernel line (timestamped) or the init's first word: the guest runs.
    if (!this.started && /^\[\s*\d+\.\d+\]|^aionbd/.test(line)) {
      this.started = true;
      this.onStarted();
    }
    try {
      this.logFn?.(line);
    } catch {
      // A throwing logger must not take the VM down.
    }
  }
}
