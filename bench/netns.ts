/**
 * A two-host test network inside this machine: network namespaces joined by
 * a veth pair, with nftables dropping packets at random on both hosts'
 * input (`numgen random mod 10000 < N drop`), so that the kernel loses
 * segments and TCP's own retransmission runs. Needs root, `ip` and `nft`
 * (`tc netem` is not available on our machines). Everything it makes is
 * removed by `close()`, also after a failure, and stale namespaces of
 * earlier runs are removed at start.
 *
 * @module
 */
import { UserError } from "../lib/core/errors.ts";
import { commandExists } from "../tests/support/tool_process.ts";

/** Prefix of every namespace this makes, for finding leftovers. */
export const NETNS_PREFIX = "skbench";
/** The server's and the client's addresses (TEST-NET-2, never routed). */
export const SERVER_IP = "198.51.100.1";
export const CLIENT_IP = "198.51.100.2";

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const out = await child.output();
  if (out.code !== 0) {
    throw new UserError(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Why the namespace network cannot be used here, or null if it can. */
export async function netnsUnavailable(): Promise<string | null> {
  if (Deno.uid() !== 0) return "not running as root";
  for (const tool of ["ip", "nft"]) {
    if (!(await commandExists(tool))) {
      return `${tool} is not installed (apt-get install iproute2 nftables)`;
    }
  }
  return null;
}

/** Names of namespaces this module made that still exist, whoever made them. */
export async function leftoverNamespaces(): Promise<string[]> {
  const out = await run("ip", ["netns", "list"]).catch(() => "");
  return out.split("\n").map((l) => l.split(" ")[0]).filter((n) => n.startsWith(NETNS_PREFIX));
}

/** The process that made namespace `name` (its id is in the name). */
function ownerOf(name: string): number {
  return Number(/-[sc](\d+)$/.exec(name)?.[1] ?? NaN);
}

/** Namespaces that process `pid` made and that still exist. */
export async function namespacesOf(pid: number): Promise<string[]> {
  return (await leftoverNamespaces()).filter((n) => ownerOf(n) === pid);
}

/**
 * Namespaces whose maker is gone (killed before it could remove them).
 * Another run's namespaces, on a machine where two run at once, are not.
 */
async function staleNamespaces(): Promise<string[]> {
  const stale: string[] = [];
  for (const name of await leftoverNamespaces()) {
    const pid = ownerOf(name);
    const alive = Number.isFinite(pid) &&
      await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
    if (!alive) stale.push(name);
  }
  return stale;
}

/** A running two-namespace network. */
export interface LossyNetwork extends AsyncDisposable {
  /** Namespace of the server host. */
  server: string;
  /** Namespace of the client host. */
  client: string;
  /** Sets the random drop rate (0 to 1) on both hosts' input. */
  setLoss(p: number): Promise<void>;
  /** Bytes the client's interface received and sent so far. */
  clientBytes(): Promise<{ rx: number; tx: number }>;
  /** Removes the namespaces (and so the veth pair and the rules). Idempotent. */
  close(): Promise<void>;
}

/** Builds the network. Removes what it made if any step fails. */
export async function createLossyNetwork(): Promise<LossyNetwork> {
  for (const stale of await staleNamespaces()) {
    await run("ip", ["netns", "del", stale]).catch(() => {});
  }
  // The whole process id (at most 7 digits: veth names stay within 15 bytes).
  const id = `${Deno.pid}`;
  const server = `${NETNS_PREFIX}-s${id}`;
  const client = `${NETNS_PREFIX}-c${id}`;
  const vs = `sks${id}`;
  const vc = `skc${id}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const ns of [server, client]) await run("ip", ["netns", "del", ns]).catch(() => {});
  };
  try {
    await run("ip", ["netns", "add", server]);
    await run("ip", ["netns", "add", client]);
    await run("ip", ["link", "add", vs, "type", "veth", "peer", "name", vc]);
    await run("ip", ["link", "set", vs, "netns", server]);
    await run("ip", ["link", "set", vc, "netns", client]);
    await run("ip", ["-n", server, "addr", "add", `${SERVER_IP}/24`, "dev", vs]);
    await run("ip", ["-n", client, "addr", "add", `${CLIENT_IP}/24`, "dev", vc]);
    for (const [ns, dev] of [[server, vs], [client, vc]]) {
      await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      await run("ip", ["-n", ns, "link", "set", dev, "up"]);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const setLoss = async (p: number) => {
    const n = Math.round(p * 10000);
    for (const ns of [server, client]) {
      const rules = `table inet skloss\ndelete table inet skloss\ntable inet skloss {\n` +
        `  chain input {\n    type filter hook input priority 0; policy accept;\n` +
        (n > 0 ? `    iifname != "lo" numgen random mod 10000 < ${n} drop\n` : "") +
        `  }\n}\n`;
      await run("ip", ["netns", "exec", ns, "nft", "-f", "-"], rules);
    }
  };
  const clientBytes = async () => {
    const read = (f: string) =>
      run("ip", ["netns", "exec", client, "cat", `/sys/class/net/${vc}/statistics/${f}`]);
    return { rx: Number(await read("rx_bytes")), tx: Number(await read("tx_bytes")) };
  };
  return { server, client, setLoss, clientBytes, close, [Symbol.asyncDispose]: close };
}
