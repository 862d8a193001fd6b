/**
 * Which of a folder's files the File-TCP client sends together in packs
 * (`lib/core/file/pack.ts` says how a pack is laid out): consecutive small
 * files of one folder, up to {@link PACK_FILES} files or
 * {@link PACK_BYTES} bytes. No I/O: it groups entries as a walk yields
 * them.
 *
 * @module
 */
import type { Entry } from "./entry.ts";
import { PACK_FILE_BYTES } from "./pack.ts";

/** Files in one pack, at most. */
export const PACK_FILES = 256;
/**
 * Bytes in one pack, at most: its files (as walked) and its manifest (as
 * estimated by {@link manifestBytes}). A pack of at most a megabyte stays
 * in the server's memory (its write batch) until it is verified and
 * unpacked; a larger one is written to a partial file and read back.
 */
export const PACK_BYTES = 1024 * 1024;

/**
 * At most the bytes a file adds to a pack's manifest: its size, mode and
 * time, and its path with every character escaped at worst.
 */
function manifestBytes(e: Entry): number {
  let bytes = 80;
  for (const c of e.parts!) bytes += 6 * c.length + 3;
  return bytes;
}

/**
 * Groups consecutive small files of one folder into packs (`kind:
 * "pack"`): up to {@link PACK_FILES} files or {@link PACK_BYTES} bytes,
 * each at most {@link PACK_FILE_BYTES}. Anything else passes as it is.
 */
export async function* packSmallFiles(
  entries: Iterable<Entry> | AsyncIterable<Entry>,
): AsyncGenerator<Entry> {
  let group: Entry[] = [];
  let bytes = 0;
  let packed = 20; // with the manifest's own
  const out = (): Entry => {
    const members = group;
    group = [];
    const size = bytes;
    bytes = 0;
    packed = 20;
    return members.length === 1
      ? members[0]
      : { name: members[0].name, kind: "pack", members, size };
  };
  for await (const e of entries) {
    const small = e.parts !== undefined && e.kind === undefined && e.source !== undefined &&
      e.size <= PACK_FILE_BYTES;
    const adds = small ? e.size + manifestBytes(e) : 0;
    if (
      group.length > 0 &&
      (!small || e.name !== group[0].name || group.length >= PACK_FILES ||
        packed + adds > PACK_BYTES)
    ) yield out();
    if (small) {
      group.push(e);
      bytes += e.size;
      packed += adds;
    } else yield e;
  }
  if (group.length > 0) yield out();
}
