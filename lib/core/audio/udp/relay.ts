/**
 * The impairment relay's core, with no I/O: what each datagram passing
 * through becomes. Datagrams from the server to clients go through one
 * seeded {@link Impairment} model (their headers protected, so that damage
 * lands in the payload unless `corruptHeader` says otherwise), those from
 * clients through another that passes them untouched unless `both` is
 * set; a DATA fragment's fate can be kept, for tests that check what
 * clients counted. The shell (`lib/io/udp_relay.ts`) owns the sockets
 * and the timers that hold a delayed delivery.
 *
 * @module
 */
import {
  type Delivery,
  type Fate,
  Impairment,
  type ImpairmentConfig,
} from "../../wire/impairment.ts";
import { DATA_HEADER, decodeFragment, isRejected } from "./datagrams.ts";

/** One DATA fragment's fate, for tests that check what clients counted. */
export interface FragmentFate extends Fate {
  /** The fragment's block sequence number. */
  seq: number;
  /** The fragment's index in its block. */
  index: number;
}

/** Options of {@link RelayCore}. */
export interface RelayCoreOptions {
  /** Impairments of server-to-client datagrams. */
  impair: ImpairmentConfig;
  /** Also impair client-to-server datagrams. */
  both?: boolean;
  /** Seed of the impairment model, so a run can be repeated (default 1). */
  seed?: number;
  /** Keep the fate of every DATA fragment (default false). */
  record?: boolean;
  /** Impair only server-to-client datagrams of these types (default: every one). */
  types?: number[];
}

/** What a relay does to the datagrams it passes on. */
export class RelayCore {
  /** The server-to-client model. */
  readonly down: Impairment;
  /** Fates of DATA fragments, in the order the server sent them (if recorded). */
  readonly fates: FragmentFate[] = [];
  #up: Impairment;
  #o: RelayCoreOptions;

  /** A relay's core with its two seeded models. */
  constructor(options: RelayCoreOptions) {
    this.#o = options;
    this.down = new Impairment({ protect: DATA_HEADER, ...options.impair }, options.seed ?? 1);
    this.#up = new Impairment(
      options.both ? { protect: 4, ...options.impair } : {},
      (options.seed ?? 1) + 1,
    );
  }

  /** What a datagram from the server to a client becomes. */
  toClient(d: Uint8Array): Delivery[] {
    if (this.#o.types && !this.#o.types.includes(d[3])) return [{ data: d, delayMs: 0 }];
    const { fate, deliveries } = this.down.decide(d);
    if (this.#o.record) {
      const f = decodeFragment(d);
      if (!isRejected(f)) this.fates.push({ seq: f.seq, index: f.index, ...fate });
    }
    return deliveries;
  }

  /** What a datagram from a client to the server becomes. */
  toServer(d: Uint8Array): Delivery[] {
    return this.#up.decide(d).deliveries;
  }
}
