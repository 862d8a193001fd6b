/**
 * `deno task demo`: the toolkit's main jobs on loopback with embedded
 * defaults. Starts a file server in a temporary directory, sends
 * `chamber.mp4` to it, and prints what arrived and its MD5.
 *
 * @module
 */
import { join } from "node:path";
import { runMain } from "./lib/cli.ts";
import { Md5Stream } from "./lib/md5.ts";
import { formatBytes } from "./lib/format.ts";
import { startFileServer } from "./tcp/file_server.ts";
import { sendFile, summarize } from "./tcp/file_client.ts";

async function fileDemo(): Promise<void> {
  console.log("== File-TCP: chamber.mp4 to a server on loopback, MD5 on every chunk");
  const dir = await Deno.makeTempDir({ prefix: "sockets-demo-" });
  try {
    await using server = await startFileServer({
      port: 0,
      dir,
      log: (line) => console.log(`server: ${line}`),
    });
    console.log(`server: listening on 127.0.0.1:${server.addr.port}, storing in ${dir}`);
    const source = new URL("./chamber.mp4", import.meta.url).pathname;
    const result = await sendFile({ port: server.addr.port, path: source, progress: true });
    console.log(`client: ${summarize(result)}`);
    const stored = await Deno.readFile(join(dir, result.storedAs));
    const md5 = new Md5Stream().update(stored).hex();
    const verdict = md5 === result.md5 ? "matches the source" : "DOES NOT MATCH the source";
    console.log(
      `arrived: ${result.storedAs}, ${stored.length} bytes (${formatBytes(stored.length)}), ` +
        `MD5 ${md5}, ${verdict}`,
    );
    if (md5 !== result.md5) throw new Error("The stored file differs from the source");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

runMain(async () => {
  await fileDemo();
});
