/**
 * One transfer on a file server's connection: its receiver core, and what
 * the shell does for it on the disk (its partial, the digest book, where
 * it is stored), as the offer policy (`lib/core/file/offer_policy.ts`)
 * decides.
 *
 * @module
 */
import { FileReceiver, type ReceiverEvent } from "../../core/file/receiver.ts";
import type { Offer } from "../../core/file/messages.ts";
import { storedMode } from "../../core/file/disk_policy.ts";
import {
  judgeProof,
  modeToSet,
  offerLabel,
  type OfferPlan,
  packEntries,
  partialFor,
  planOffer,
  sameStored,
  storedPath,
  updateStep,
} from "../../core/file/offer_policy.ts";
import type { FileStat } from "../contained_root.ts";
import { describeError } from "../errors.ts";
import {
  type BookEntry,
  clientMessage,
  type PackPlacement,
  type PartialFile,
  type TreePlacer,
} from "../file_store/mod.ts";
import type { Settings, TransferRecord } from "./settings.ts";

/** One transfer on a connection: its session core and what the shell holds for it. */
export class Session {
  readonly core = new FileReceiver();
  readonly rec: TransferRecord = { name: "", ...this.core.counters };
  partial: PartialFile | undefined;
  #s: Settings;
  #host: string;
  #place: TreePlacer;
  #offer: Offer | undefined;
  #plan: OfferPlan | undefined;
  #base = "";
  /** A folder entry's path below DIR, once placed. */
  #entry: string | undefined;
  /** Sends bytes to the client on this transfer's stream. */
  readonly send: (bytes: Uint8Array) => Promise<void>;
  /** The verified file being stored, once it is. */
  finishing: Promise<void> | undefined;
  /** An update offer's claim: the stored file it is about, and the proof it must match. */
  #claim:
    | {
      stored: string;
      entry: BookEntry;
      /** What `lstat` (through the root) said of the stored file when the book was asked. */
      info: FileStat;
      /** The book's salted digest, or one being computed from the stored file. */
      expected: string | Promise<string | null>;
    }
    | undefined;
  /** The client's proof missed: given back once its replacement is stored. */
  #missed = false;

  constructor(
    s: Settings,
    host: string,
    place: TreePlacer,
    send: (bytes: Uint8Array) => Promise<void>,
  ) {
    this.#s = s;
    this.#host = host;
    this.#place = place;
    this.send = send;
  }

  /**
   * Acts on the core's events strictly in order (a `read` may name a chunk
   * whose `store` is earlier in the queue); returns true once the session
   * is over: the file up to date, or verified and being stored
   * ({@link finishing}).
   */
  async act(queue: ReceiverEvent[]): Promise<boolean> {
    const s = this.#s;
    for (let e = queue.shift(); e; e = queue.shift()) {
      switch (e.type) {
        case "offer": {
          const offer = this.#offer = e.offer;
          this.rec.name = offerLabel(offer);
          const plan = this.#plan = planOffer(offer, s);
          this.#base = plan.base;
          if (plan.parts) {
            this.#entry = await this.#place.place(plan.base, plan.parts, plan.reuse, plan.isDir);
          }
          const step = updateStep(offer, !!offer.update && this.#challenge(offer));
          if (step === "check-proof" && await this.#proven(offer.proof!)) return true;
          if (step === "challenge") {
            await this.send(this.core.challenge(s.digests.salt));
            queue.push(...this.core.receive(EMPTY, performance.now()));
            break;
          }
          await this.#accept(queue);
          break;
        }
        case "proof":
          if (await this.#proven(e.proof)) return true;
          await this.#accept(queue);
          break;
        case "store":
          await this.partial!.writeChunk(e.index, e.data);
          break;
        case "read":
          queue.push(...this.core.hashChunk(e.index, await this.partial!.readChunk(e.index)));
          break;
        case "send":
          await this.send(e.bytes);
          break;
        case "checkpoint":
          await this.partial!.save();
          break;
        case "verified":
          // Stored while the connection goes on taking other transfers'
          // frames (a large file's last writes and, with --fsync, its sync
          // run on Deno's file threads meanwhile).
          this.finishing = this.#store();
          return true;
      }
    }
    return false;
  }

  /** Opens (or resumes) the offer's partial and accepts it. */
  async #accept(queue: ReceiverEvent[]): Promise<void> {
    const offer = this.#offer!;
    const { resume, named } = partialFor(offer);
    this.partial = this.#s.store.open(offer.size, offer.chunkSize, resume, this.#host, named);
    await this.send(this.core.accept(this.partial.state, this.partial.token));
    queue.push(...this.core.receive(EMPTY, performance.now()));
  }

  /**
   * Whether to ask an update offer for proof: the book has the file stored
   * at its place with its size, unchanged, and this host has misses left.
   * The salted digest expected is the book's, or computed now from the
   * stored file (while the client computes its own).
   */
  #challenge(offer: Offer): boolean {
    const s = this.#s;
    const stored = storedPath(this.#plan!, this.#entry);
    const found = s.digests.lookup(stored, offer.size);
    if (!found || !s.proofs.mayChallenge(this.#host, performance.now())) return false;
    const { entry, info } = found;
    this.#claim = { stored, entry, info, expected: s.digests.expectedProof(stored, entry) };
    return true;
  }

  /**
   * Whether the client's proof shows it holds the stored file, still
   * there: then the offer is answered up to date (its mode, and only
   * then, follows the sender's). A miss is counted against the host.
   */
  async #proven(proof: string): Promise<boolean> {
    const s = this.#s;
    const { stored, entry, expected } = this.#claim!;
    const offer = this.#offer!;
    let want: string | null;
    let info: FileStat | undefined = this.#claim!.info;
    if (typeof expected !== "string") {
      // Computed meanwhile: the file is asked again whether it is the one stored.
      want = await expected;
      const now = s.digests.lookup(stored, offer.size);
      info = sameStored(entry, now?.entry) ? now!.info : undefined;
    } else want = expected;
    const verdict = judgeProof(want, info !== undefined, proof);
    if (verdict === "unknown") return false; // nothing to compare with: not a miss
    if (verdict === "miss") {
      s.proofs.missed(this.#host, performance.now());
      this.#missed = true;
      return false;
    }
    // Its mode follows the sender's, masked (a chmod only if it changed).
    const mode = modeToSet(offer, info!.mode);
    if (mode !== undefined) s.root.chmod(stored, mode);
    this.rec.storedAs = stored;
    this.rec.upToDate = true;
    await this.send(this.core.upToDate(stored, entry.md5));
    return true;
  }

  /**
   * A verified pack: each of its files stored as a folder entry would be,
   * each path checked on its own (a bad one fails only its file, listed in
   * the DONE), and each file's digest recorded.
   */
  async #unpack(): Promise<void> {
    const s = this.#s;
    const data = await this.partial!.readAll();
    this.partial = undefined;
    const root = await this.#place.root(this.#base, s.overwrite);
    const failed: [number, string][] = [];
    const fail = (i: number, name: string, why: string, log: string) => {
      failed.push([
        i,
        why.length > PACK_REASON_CHARS ? why.slice(0, PACK_REASON_CHARS) + "…" : why,
      ]);
      (this.rec.failures ??= []).push(`${name}: ${log}`);
    };
    // Placed here (folders made and checked, one connection's choices in
    // one place), then written, hashed and renamed on the store worker.
    // Nothing of the pack's files is held here while the worker has them:
    // with ten thousand files, what outlives a young collection is
    // garbage the old generation grows by.
    const { count, placed, refused } = await this.#placePack(data);
    for (const [i, name, err] of refused) {
      fail(i, name, clientMessage(err, s.dir), describeError(err));
    }
    const storing = placed.length > 0
      ? s.packs.store(placed, data, s.digests.salt)
      : Promise.resolve([]);
    placed.length = 0;
    const outcomes = await storing;
    const md5s: string[] = new Array(count).fill("");
    for (const o of outcomes) {
      if ("error" in o) {
        fail(o.index, `${this.#offer!.name}${o.storedAs.slice(root.length)}`, o.error, o.log);
      } else {
        md5s[o.index] = o.entry.md5;
        s.digests.record(o.storedAs, o.entry);
      }
    }
    failed.sort((a, b) => a[0] - b[0]);
    this.rec.storedAs = root;
    this.rec.packed = count - failed.length;
    await this.send(this.core.stored(root, failed, md5s));
  }

  /**
   * A verified pack's files placed: where each goes and where its bytes
   * lie, and those refused (their index, name and why).
   */
  async #placePack(data: Uint8Array): Promise<{
    count: number;
    placed: PackPlacement[];
    refused: [number, string, unknown][];
  }> {
    const s = this.#s;
    const files = packEntries(data, this.#offer!.name);
    const placed: PackPlacement[] = [];
    const refused: [number, string, unknown][] = [];
    for (const f of files) {
      if ("refused" in f) {
        refused.push([f.index, f.name, f.refused]);
        continue;
      }
      try {
        const storedAs = await this.#place.place(this.#base, f.parts, s.overwrite, false);
        placed.push({ index: f.index, storedAs, mode: f.mode, start: f.start, end: f.end });
      } catch (err) {
        refused.push([f.index, f.name, err]);
      }
    }
    return { count: files.length, placed, refused };
  }

  /** Once the file is verified: stores it, records its digest, and says DONE. */
  async #store(): Promise<void> {
    const s = this.#s;
    if (this.#offer!.kind === "pack") return await this.#unpack();
    const offer = this.#offer!;
    if (offer.kind === "dir") {
      // Made when placed; nothing was stored for it.
      await this.partial!.discard();
      this.partial = undefined;
      if (offer.mode !== undefined) s.root.chmod(this.#entry!, storedMode(offer.mode, true));
      this.rec.storedAs = this.#entry;
    } else if (this.#entry) {
      await this.partial!.finalizeAs(this.#entry, offer.mode, s.fsync, s.digests.salt);
      this.rec.storedAs = this.#entry;
    } else {
      // An update replaces the stored copy (atomically, by rename).
      this.rec.storedAs = await this.partial!.finalize(
        this.#base,
        s.overwrite || !!offer.update,
        s.fsync,
      );
    }
    if (offer.kind !== "dir") {
      s.digests.record(this.rec.storedAs!, this.partial!.entry(this.core.md5!));
    }
    if (this.#missed) s.proofs.refund(this.#host, performance.now());
    await this.send(this.core.stored(this.rec.storedAs!));
  }
}

/** A pack's failure message, cut to what a DONE has room for. */
const PACK_REASON_CHARS = 200;

const EMPTY = new Uint8Array(0);
