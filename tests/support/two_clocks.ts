/**
 * Two machines' clocks and the path between them, simulated for the clock
 * sync core's tests and bench: the client's clock is real time, the
 * server's runs `offsetMs` away from it and `driftPpm` faster, and each
 * direction takes its base delay plus seeded random jitter.
 *
 * @module
 */
import type { ClockSync } from "../../lib/core/audio/stages/clock_sync.ts";
import { Impairment } from "../../lib/core/wire/impairment.ts";

/** The simulated pair of clocks and the path. */
export interface TwoClocksModel {
  /** The server's clock minus the client's at real time 0, ms. */
  offsetMs: number;
  /** How much faster the server's clock runs, ppm. */
  driftPpm?: number;
  /** Client-to-server delay, ms (default 1). */
  forwardMs?: number;
  /** Server-to-client delay, ms (default 1). */
  backMs?: number;
  /** Each direction adds a uniform random delay up to this, ms (default 0). */
  jitterMs?: number;
  /** Seed of the jitter. */
  seed?: number;
}

/** A simulated client, server and path. Real time is the client's clock. */
export class TwoClocks {
  /** The model. */
  readonly model: TwoClocksModel;
  #random: Impairment;
  /** Server-clock steps added so far, ms. */
  step = 0;

  /** Simulates `model`. */
  constructor(model: TwoClocksModel) {
    this.model = model;
    this.#random = new Impairment({}, model.seed ?? 1);
  }

  /** The server's clock at real time `t`. */
  server(t: number): number {
    return t + this.truth(t);
  }

  /** The true offset (server minus client) at real time `t`. */
  truth(t: number): number {
    return this.model.offsetMs + this.step + ((this.model.driftPpm ?? 0) / 1e6) * t;
  }

  /**
   * One exchange started at real time `t`, fed to `sync`; `extraForward`
   * delays the request only (an asymmetric hiccup). Returns when the answer
   * arrived and the offset this exchange alone gives (plain NTP).
   */
  exchange(sync: ClockSync, t: number, extraForward = 0): { t4: number; offset: number } {
    const m = this.model;
    const jitter = () => this.#random.random() * (m.jitterMs ?? 0);
    const t1 = sync.stamp(t);
    const arrive = t + (m.forwardMs ?? 1) + jitter() + extraForward;
    const t2 = this.server(arrive);
    const t3 = this.server(arrive + 0.05);
    const t4 = arrive + 0.05 + (m.backMs ?? 1) + jitter();
    const why = sync.answer(t1, t2, t3, t4);
    if (why) throw new Error(`Sync refused a good answer: ${why}`);
    return { t4, offset: (t2 - t1 + (t3 - t4)) / 2 };
  }

  /**
   * Runs exchanges on the sync's own schedule from real time `from` to
   * `to`; returns the offset the last exchange alone gave, if any ran.
   */
  run(sync: ClockSync, from: number, to: number): number | undefined {
    let t = from;
    let last: number | undefined;
    while (t < to) {
      t = Math.max(t, sync.nextDue());
      if (t >= to) break;
      last = this.exchange(sync, t).offset;
      t += 0.001;
    }
    return last;
  }
}
