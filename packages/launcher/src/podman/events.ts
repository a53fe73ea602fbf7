// One `podman events` process tells the runtime when any of its containers dies: one process for all
// workloads instead of a `podman wait` (tens of MiB each) per container. It starts with `--since` so a death
// between spawning it and its subscribing is replayed, and restarts after a delay if it ends; the runtime
// sweeps (podman ps) on every restart and periodically, so a lost event only delays a result.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { EVENTS_RESTART_DELAY_MS } from '../limits.js';
import type { PodmanCli } from './cli.js';
import { LABEL } from './labels.js';

/** Longest event line read; podman's died event for one container is a few hundred bytes plus labels. */
const MAX_EVENT_LINE_CHARS = 64 * 1024;
/** Replay window when the process restarts: events since the last one seen, less this margin. */
const SINCE_MARGIN_MS = 2_000;

export interface DiedHandlers {
  died(container_id: string): void;
  /** The stream restarted: events may have been missed, sweep. */
  restarted(): void;
}

export class DiedEvents {
  private child: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private since_ms: number;

  constructor(
    private readonly cli: PodmanCli,
    private readonly launcher_id: string,
    private readonly log: Logger,
    private readonly handlers: DiedHandlers,
    now_ms: number = Date.now(),
  ) {
    this.since_ms = now_ms - SINCE_MARGIN_MS;
  }

  start(): void {
    if (this.stopped || this.child !== null) return;
    const args = [
      'events',
      '--format=json',
      '--filter=event=died',
      `--filter=label=${LABEL.launcher}=${this.launcher_id}`,
      `--since=${new Date(this.since_ms).toISOString()}`,
    ];
    const child = this.cli.spawn(args);
    this.child = child;
    const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
    lines.on('line', (line) => this.onLine(line));
    let err = '';
    child.stderr!.on('data', (d: Buffer) => void (err.length < 4096 && (err += d.toString())));
    child.on('error', (e) => this.log.warn({ err: e.message }, 'podman events failed to start'));
    child.on('close', (code) => {
      this.child = null;
      if (this.stopped) return;
      this.log.warn({ code, stderr: err.trim() }, 'podman events ended; restarting it');
      this.timer = setTimeout(() => {
        this.timer = null;
        this.start();
        this.handlers.restarted();
      }, EVENTS_RESTART_DELAY_MS);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.child?.kill('SIGTERM');
    this.child = null;
  }

  private onLine(line: string): void {
    if (line.length > MAX_EVENT_LINE_CHARS) return;
    let e: { ID?: unknown; Status?: unknown; Time?: unknown };
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    if (e.Status !== 'died' || typeof e.ID !== 'string' || !/^[0-9a-f]{64}$/.test(e.ID)) return;
    const t = typeof e.Time === 'string' ? Date.parse(e.Time) : NaN;
    if (Number.isFinite(t)) this.since_ms = Math.max(this.since_ms, t - SINCE_MARGIN_MS);
    this.handlers.died(e.ID);
  }
}
