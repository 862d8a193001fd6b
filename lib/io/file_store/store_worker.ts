/**
 * The file server's store worker (`PackStorer` in `packs.ts` runs it): takes verified
 * packs and stores their files, each by a temporary file and a rename,
 * answering with each file's MD5 and modification time for the digest
 * book, or why it failed. Permissions are the server's own.
 *
 * @module
 */
import { useNativeCrypto } from "../native_crypto.ts";
import { describeError } from "../errors.ts";
import { type PackDone, type PackJob, storePackFiles } from "./packs.ts";

/** The worker's side of its message port. */
interface Port {
  onmessage: ((e: MessageEvent<PackJob>) => void) | null;
  postMessage(message: PackDone): void;
}

const port = globalThis as unknown as Port;
useNativeCrypto();
port.onmessage = (e) => {
  let done: PackDone;
  try {
    done = { id: e.data.id, outcomes: storePackFiles(e.data) };
  } catch (err) {
    done = { id: e.data.id, failure: describeError(err) };
  }
  port.postMessage(done);
};
