/**
 * `deno task bench-file [--size 1G] [--rounds 3] [--files 10000]`: times a loopback File-TCP
 * transfer against the baseline `nc` with `md5sum` on both ends, run side by
 * side in the same run, and prints the ratios, File-TCP's CPU seconds per
 * side and both sides' peak memory. The same transfer with a shared code
 * (SPAKE2, every frame sealed) runs beside them, and so do `scp` (OpenSSH's
 * default cipher, key login to an `sshd` started on loopback for the bench)
 * where sshd is installed, and an rsync daemon on loopback where rsync is
 * installed: `rsync --whole-file --checksum-choice=md5` (it verifies the
 * file with MD5 as we do) and `rsync --whole-file` with its default
 * checksum (xxh128, the first both ends list).
 *
 * Baseline, in two forms run side by side (the ratio is against the faster):
 * `tee >(md5sum) < FILE | nc -N`, and `md5sum FILE & nc -N < FILE`, each
 * into `nc -l | tee OUT | md5sum`.
 * Ours: `tcp/file_client.ts` into `tcp/file_server.ts`, each a process.
 * It runs with --allow-all because Deno grants /proc (peak memory) only so.
 *
 * Then a folder of `--files` small files (1 to 10 KiB, 100 to a folder):
 * File-TCP sending the folder, `rsync -r --whole-file` into the daemon
 * (with `--checksum-choice=md5` and with its default), and the baseline
 * `tar -cf - . | nc -N` into `nc -l | tar -xf -`, with `md5sum` of every
 * file on both ends and the lists compared; then File-TCP again with
 * `--update` over the unchanged folder. Every copy goes to a folder of its
 * own, removed at the end: ext4 makes files several times slower for
 * minutes after many were deleted, which would time the file system.
 *
 * @module
 */
import { join } from "node:path";
import { parseFlags, parseSizeFlag, runMain } from "../lib/cli/flags.ts";
import { UserError } from "../lib/core/errors.ts";
import { formatBytes } from "../lib/core/report/format.ts";
import {
  commandExists,
  FILE_CLIENT_PERMS,
  FILE_SERVER_PERMS,
  startServerTool,
  toolCommand,
} from "../tests/support/tool_process.ts";
import { freePort } from "../tests/support/helpers.ts";

// The permissions of the deno.json tasks.
/** The code of the coded rounds. */
const CODE = "bamol-tisek-ruvan";

/** Peak resident memory (VmHWM) of a process in bytes, or 0 once it is gone. */
async function peakRss(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user and system) a process has used, or null once it is gone. */
async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Linux's clock ticks per second for /proc times (USER_HZ, 100 on every Linux we run). */
const CLOCK_TICKS = 100;

/**
 * Watches a process until `done` settles: its peak memory, and its CPU
 * seconds at the last look (sampled every 20 ms, so at most that much of
 * its last moments is missed).
 */
async function watch(pid: number, done: Promise<unknown>): Promise<{ peak: number; cpu: number }> {
  let peak = 0;
  let cpu = 0;
  let finished = false;
  done.finally(() => finished = true);
  while (!finished) {
    peak = Math.max(peak, await peakRss(pid));
    cpu = (await cpuSeconds(pid)) ?? cpu;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { peak, cpu };
}

/**
 * The two forms of the baseline's sender: `tee` pipes the file through
 * `tee` into `md5sum` (one reader, a copy through a pipe); `beside` runs
 * `md5sum FILE` beside `nc -N < FILE` (two readers of the page cache, no
 * pipe), which is faster here. The receiver is the same for both.
 */
const SENDERS = {
  tee: (file: string, port: number) => `tee >(md5sum >&2) < '${file}' | nc -N 127.0.0.1 ${port}`,
  beside: (file: string, port: number) =>
    `md5sum '${file}' >&2 & nc -N 127.0.0.1 ${port} < '${file}'; wait`,
};

async function baseline(
  file: string,
  out: string,
  sender: keyof typeof SENDERS,
): Promise<number> {
  const port = freePort();
  // nc prints nothing when it listens; give it a moment before sending.
  const rx = new Deno.Command("bash", {
    args: ["-c", `nc -l 127.0.0.1 ${port} | tee '${out}' | md5sum`],
    stdout: "piped",
  }).spawn();
  await new Promise((r) => setTimeout(r, 300));
  const start = performance.now();
  const tx = await new Deno.Command("bash", {
    args: ["-c", SENDERS[sender](file, port)],
    stderr: "piped",
  }).output();
  const got = await rx.output();
  const seconds = (performance.now() - start) / 1000;
  const sent = new TextDecoder().decode(tx.stderr).split(" ")[0];
  const received = new TextDecoder().decode(got.stdout).split(" ")[0];
  if (sent !== received || sent.length !== 32) {
    throw new UserError(`Baseline MD5s differ: ${sent} and ${received}`);
  }
  return seconds;
}

/**
 * The baseline for a folder: `tar` through `nc`, with `md5sum` of every
 * file on both ends (the sender's beside the transfer, the receiver's
 * after it), the lists compared.
 */
async function treeBaseline(tree: string, out: string): Promise<number> {
  const port = freePort();
  await Deno.mkdir(out);
  const sums = "find . -type f -print0 | sort -z | xargs -0 md5sum";
  const rx = new Deno.Command("bash", {
    args: ["-c", `nc -l 127.0.0.1 ${port} | tar -C '${out}' -xf - && cd '${out}' && ${sums}`],
    stdout: "piped",
  }).spawn();
  await new Promise((r) => setTimeout(r, 300));
  const start = performance.now();
  const tx = await new Deno.Command("bash", {
    args: [
      "-c",
      `(cd '${tree}' && ${sums}) & tar -C '${tree}' -cf - . | nc -N 127.0.0.1 ${port}; wait`,
    ],
    stdout: "piped",
  }).output();
  const got = await rx.output();
  const seconds = (performance.now() - start) / 1000;
  const sent = new TextDecoder().decode(tx.stdout);
  if (sent !== new TextDecoder().decode(got.stdout) || sent.length === 0) {
    throw new UserError("Baseline MD5 lists of the folder differ");
  }
  return seconds;
}

/** Makes `files` files of 1 to 10 KiB of random bytes, 100 to a folder. Returns their bytes. */
async function makeTree(root: string, files: number): Promise<number> {
  let bytes = 0;
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${String(Math.floor(i / 100)).padStart(3, "0")}`);
    if (i % 100 === 0) await Deno.mkdir(dir, { recursive: true });
    const data = crypto.getRandomValues(new Uint8Array(1024 + Math.floor(next() * 9217)));
    await Deno.writeFile(join(dir, `f${String(i % 100).padStart(3, "0")}.bin`), data);
    bytes += data.length;
  }
  return bytes;
}

interface OursResult {
  seconds: number;
  clientPeak: number;
  serverPeak: number;
  /** CPU seconds of the client (sampled) and of the server (exact: it is still running). */
  clientCpu: number;
  serverCpu: number;
}

/**
 * File-TCP moving `path` (a file or a folder) into a fresh server on `dir`.
 * With `again`, the same is sent a second time with `--update` (nothing
 * changed) and that second run is timed.
 */
async function ours(
  path: string,
  dir: string,
  options: { code?: string; again?: boolean; keep?: boolean } = {},
): Promise<OursResult> {
  const env = options.code ? { SOCKETS_CODE: options.code } : undefined;
  await using server = await startServerTool(
    "tcp/file_server.ts",
    ["--port", "0", "--dir", dir, "--overwrite"],
    { permissions: FILE_SERVER_PERMS, env },
  );
  try {
    const update = options.again ? ["--update"] : [];
    const first = await timeClient([...update, path], server.port, server.child.pid, env);
    if (!options.again) return first;
    return await timeClient([...update, path], server.port, server.child.pid, env);
  } finally {
    await server.stop();
    // A folder's copies stay until every round is done (see treeRounds).
    if (!options.keep) {
      for await (const e of Deno.readDir(dir)) {
        if (e.name !== ".partial") await Deno.remove(join(dir, e.name), { recursive: true });
      }
      await Deno.remove(join(dir, ".partial", "digests"), { recursive: true }).catch(() => {});
    }
  }
}

async function timeClient(
  args: string[],
  port: number,
  serverPid: number,
  env?: Record<string, string>,
): Promise<OursResult> {
  const serverBefore = (await cpuSeconds(serverPid)) ?? 0;
  const start = performance.now();
  const client = toolCommand("tcp/file_client.ts", ["--port", String(port), ...args], {
    permissions: FILE_CLIENT_PERMS,
    stderr: "null",
    env,
  }).spawn();
  const exit = client.output();
  const watched = watch(client.pid, exit);
  const out = await exit;
  const seconds = (performance.now() - start) / 1000;
  if (out.code !== 0) {
    throw new UserError(`File client failed: ${new TextDecoder().decode(out.stdout)}`);
  }
  const serverPeak = await peakRss(serverPid);
  const serverCpu = ((await cpuSeconds(serverPid)) ?? 0) - serverBefore;
  const { peak, cpu } = await watched;
  return { seconds, clientPeak: peak, serverPeak, clientCpu: cpu, serverCpu };
}

/** Seconds `cmd` takes to run to success; its error output is the message when it fails. */
async function timed(cmd: string, args: string[]): Promise<number> {
  const start = performance.now();
  const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (r.code !== 0) throw new UserError(`${cmd} failed: ${new TextDecoder().decode(r.stderr)}`);
  return (performance.now() - start) / 1000;
}

/** An sshd of its own on loopback, with a fresh host key and a key for the client. */
async function startSshd(work: string) {
  const dir = join(work, "ssh");
  await Deno.mkdir(dir, { mode: 0o700 });
  const run = (cmd: string, args: string[]) =>
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host")]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "user")]);
  await Deno.copyFile(join(dir, "user.pub"), join(dir, "authorized_keys"));
  await Deno.mkdir("/run/sshd", { recursive: true }).catch(() => {});
  const port = freePort();
  const sshd = new Deno.Command("/usr/sbin/sshd", {
    args: [
      "-D",
      "-f",
      "/dev/null",
      "-o",
      `Port=${port}`,
      "-o",
      "ListenAddress=127.0.0.1",
      "-o",
      `HostKey=${join(dir, "host")}`,
      "-o",
      `AuthorizedKeysFile=${join(dir, "authorized_keys")}`,
      "-o",
      "StrictModes=no",
      "-o",
      "UsePAM=no",
      "-o",
      `PidFile=${join(dir, "pid")}`,
      // OpenSSH 9's scp speaks SFTP.
      "-o",
      "Subsystem=sftp internal-sftp",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 500));
  return {
    scp: (file: string, out: string) =>
      timed("scp", [
        "-q",
        "-i",
        join(dir, "user"),
        "-P",
        String(port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        file,
        `${Deno.env.get("USER") ?? "root"}@127.0.0.1:${out}`,
      ]),
    stop: async () => {
      sshd.kill();
      await sshd.status;
    },
  };
}

/** An rsync daemon of its own on loopback, with one writable module. */
async function startRsyncd(work: string) {
  const dir = join(work, "rsync");
  await Deno.mkdir(join(dir, "in"), { recursive: true });
  const conf = join(dir, "rsyncd.conf");
  // As root the daemon would drop to nobody, who cannot write here: stay root.
  const ids = Deno.uid() === 0 ? "uid = 0\ngid = 0\n" : "";
  await Deno.writeTextFile(
    conf,
    `use chroot = no\n${ids}[in]\n  path = ${join(dir, "in")}\n  read only = no\n`,
  );
  const port = freePort();
  const daemon = new Deno.Command("rsync", {
    args: ["--daemon", "--no-detach", `--config=${conf}`, `--port=${port}`, "--address=127.0.0.1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 500));
  return {
    /** Sends folder `tree` into a new folder of the module, as `rsync -r`; see {@link send}. */
    sendTree: async (tree: string, md5: boolean) => {
      const name = `tree-${crypto.randomUUID()}`;
      const seconds = await timed("rsync", [
        "-r",
        "--whole-file",
        ...(md5 ? ["--checksum-choice=md5"] : []),
        `${tree}/`,
        `rsync://127.0.0.1:${port}/in/${name}/`,
      ]);
      return seconds;
    },
    /** Sends `file` into the module; `md5` verifies it with MD5, else rsync's default checksum. */
    send: async (file: string, md5: boolean) => {
      const out = join(dir, "in", "rsync-out.bin");
      await Deno.remove(out).catch(() => {});
      const seconds = await timed("rsync", [
        "--whole-file",
        ...(md5 ? ["--checksum-choice=md5"] : []),
        file,
        `rsync://127.0.0.1:${port}/in/rsync-out.bin`,
      ]);
      await Deno.remove(out);
      return seconds;
    },
    stop: async () => {
      daemon.kill();
      await daemon.status;
    },
  };
}

/** The folder of many small files: File-TCP against tar + nc + md5sum and rsync. */
async function treeRounds(work: string, files: number, rounds: number) {
  const tree = join(work, "tree");
  const bytes = await makeTree(tree, files);
  const rsync = (await commandExists("rsync")) ? await startRsyncd(work) : undefined;
  console.log(
    `Moving a folder of ${files} files (${formatBytes(bytes)}, 1 to 10 KiB each) over loopback, ` +
      `${rounds} rounds each, alternating`,
  );
  const base: number[] = [];
  const mine: OursResult[] = [];
  const rsyncMd5: number[] = [];
  const rsyncDefault: number[] = [];
  let again: OursResult | undefined;
  try {
    // Every copy goes to a new folder and all are removed at the end: on
    // ext4, a folder made right after 10,000 files were deleted is made
    // several times slower (its inode allocator scans past the recently
    // freed ones), which would time the file system, not the tools.
    for (let i = 0; i < rounds; i++) {
      base.push(await treeBaseline(tree, join(work, `tar-out-${i}`)));
      const dir = join(work, `ours-${i}`);
      await Deno.mkdir(dir);
      mine.push(await ours(tree, dir, { keep: true }));
      if (rsync) {
        rsyncMd5.push(await rsync.sendTree(tree, true));
        rsyncDefault.push(await rsync.sendTree(tree, false));
      }
      console.log(
        `round ${i + 1}: tar+nc+md5sum ${base[i].toFixed(2)} s, file-tcp ${
          mine[i].seconds.toFixed(2)
        } s` +
          (rsync
            ? `, rsync md5 ${rsyncMd5[i].toFixed(2)} s, rsync default ${
              rsyncDefault[i].toFixed(2)
            } s`
            : ""),
      );
    }
    const dir = join(work, "ours-again");
    await Deno.mkdir(dir);
    again = await ours(tree, dir, { again: true, keep: true });
  } finally {
    await rsync?.stop();
  }
  const o = median(mine.map((m) => m.seconds));
  const b = median(base);
  console.log(
    `median: tar+nc+md5sum ${b.toFixed(2)} s, file-tcp ${o.toFixed(2)} s: ` +
      `${(o / b).toFixed(2)}x the baseline's time`,
  );
  if (rsync) {
    const m = median(rsyncMd5);
    const d = median(rsyncDefault);
    console.log(
      `median: rsync -r daemon --checksum-choice=md5 ${m.toFixed(2)} s, with its default ` +
        `${d.toFixed(2)} s; file-tcp ${(o / m).toFixed(2)}x rsync md5's time (target at most ` +
        `1.5x), ${(o / d).toFixed(2)}x rsync default's`,
    );
  }
  const cpu = (xs: number[]) => median(xs).toFixed(2);
  console.log(
    `file-tcp CPU seconds (median): client ${cpu(mine.map((m) => m.clientCpu))} s, ` +
      `server ${cpu(mine.map((m) => m.serverCpu))} s; peak memory: client ${
        formatBytes(Math.max(...mine.map((m) => m.clientPeak)))
      }, server ${formatBytes(Math.max(...mine.map((m) => m.serverPeak)))}`,
  );
  console.log(
    `file-tcp --update again over the unchanged folder: ${again.seconds.toFixed(2)} s ` +
      "(0 bytes sent)",
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const FLAGS = {
  size: {
    type: "string",
    default: "1G",
    value: "SIZE",
    help: "size of the test file (0: the folder of small files alone)",
  },
  rounds: { type: "string", default: "3", value: "N", help: "rounds of each, alternating" },
  files: {
    type: "string",
    default: "10000",
    value: "N",
    help: "files in the folder of small files (1 to 10 KiB each); 0 skips the folder",
  },
  tmp: {
    type: "string",
    default: "",
    value: "DIR",
    help: "where the file and copies go (default the system temp dir; /dev/shm takes the disk out)",
  },
} as const;

runMain(async () => {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task bench-file",
    summary: "Time File-TCP against nc + md5sum, scp and rsync on loopback, side by side.",
  });
  const size = parseSizeFlag("size", flags.size);
  const rounds = Number(flags.rounds);
  for (const tool of ["nc", "md5sum", "tee", "head"]) {
    if (!(await commandExists(tool))) {
      throw new UserError(`${tool} is not installed (apt-get install netcat-openbsd)`);
    }
  }
  const work = await Deno.makeTempDir({ prefix: "bench-file-", dir: flags.tmp || undefined });
  try {
    const files = Number(flags.files);
    if (size === 0) {
      // The folder alone (`--size 0`).
      if (files > 0) await treeRounds(work, files, rounds);
      return;
    }
    const file = join(work, "payload.bin");
    await new Deno.Command("bash", {
      args: ["-c", `head -c ${size} /dev/urandom > '${file}'`],
    }).output();
    const recv = join(work, "recv");
    await Deno.mkdir(recv);
    const base: number[] = [];
    const beside: number[] = [];
    const mine: OursResult[] = [];
    const coded: OursResult[] = [];
    const scps: number[] = [];
    const rsyncMd5: number[] = [];
    const rsyncDefault: number[] = [];
    const rsync = (await commandExists("rsync")) ? await startRsyncd(work) : undefined;
    if (!rsync) console.log("rsync rows skipped: rsync is not installed (apt-get install rsync)");
    const ssh = (await commandExists("scp")) && (await Deno.stat("/usr/sbin/sshd").catch(() =>
        null
      ))
      ? await startSshd(work)
      : undefined;
    if (!ssh) {
      console.log("scp rows skipped: sshd is not installed (apt-get install openssh-server)");
    }
    console.log(
      `Moving ${formatBytes(size)} over loopback, ${rounds} rounds each, alternating, in ${work}`,
    );
    try {
      for (let i = 0; i < rounds; i++) {
        base.push(await baseline(file, join(work, "nc-out.bin"), "tee"));
        await Deno.remove(join(work, "nc-out.bin"));
        beside.push(await baseline(file, join(work, "nc-out.bin"), "beside"));
        await Deno.remove(join(work, "nc-out.bin"));
        mine.push(await ours(file, recv));
        coded.push(await ours(file, recv, { code: CODE }));
        if (ssh) {
          scps.push(await ssh.scp(file, join(work, "scp-out.bin")));
          await Deno.remove(join(work, "scp-out.bin"));
        }
        if (rsync) {
          rsyncMd5.push(await rsync.send(file, true));
          rsyncDefault.push(await rsync.send(file, false));
        }
        console.log(
          `round ${i + 1}: nc+md5sum (tee) ${base[i].toFixed(2)} s, nc+md5sum (beside) ${
            beside[i].toFixed(2)
          } s, file-tcp ${mine[i].seconds.toFixed(2)} s, file-tcp with a code ${
            coded[i].seconds.toFixed(2)
          } s` +
            (ssh ? `, scp ${scps[i].toFixed(2)} s` : "") +
            (rsync
              ? `, rsync md5 ${rsyncMd5[i].toFixed(2)} s, rsync default ${
                rsyncDefault[i].toFixed(2)
              } s`
              : ""),
        );
      }
    } finally {
      await ssh?.stop();
      await rsync?.stop();
    }
    const tee = median(base);
    const side = median(beside);
    const b = Math.min(tee, side);
    const o = median(mine.map((m) => m.seconds));
    const c = median(coded.map((m) => m.seconds));
    console.log(
      `median: file-tcp with a code ${c.toFixed(2)} s: ${(c / o).toFixed(2)}x file-tcp` +
        (ssh ? `, ${(c / median(scps)).toFixed(2)}x scp (${median(scps).toFixed(2)} s)` : ""),
    );
    const clientPeak = Math.max(...mine.map((m) => m.clientPeak));
    const serverPeak = Math.max(...mine.map((m) => m.serverPeak));
    console.log(
      `median: nc+md5sum (tee) ${tee.toFixed(2)} s, nc+md5sum (beside) ${side.toFixed(2)} s, ` +
        `file-tcp ${o.toFixed(2)} s`,
    );
    console.log(
      `ratio: ${(o / b).toFixed(2)}x the faster baseline's time (target at most 1.3x)`,
    );
    if (rsync) {
      const m = median(rsyncMd5);
      const d = median(rsyncDefault);
      console.log(
        `median: rsync daemon --checksum-choice=md5 ${m.toFixed(2)} s, with its default ` +
          `${d.toFixed(2)} s; file-tcp ${(o / m).toFixed(2)}x rsync md5's time (target at most ` +
          `1.1x), ${(o / d).toFixed(2)}x rsync default's`,
      );
    }
    const cpu = (xs: number[]) => median(xs).toFixed(2);
    console.log(
      `file-tcp CPU seconds (median): client ${cpu(mine.map((m) => m.clientCpu))} s, ` +
        `server ${cpu(mine.map((m) => m.serverCpu))} s; with a code: client ${
          cpu(coded.map((m) => m.clientCpu))
        } s, server ${cpu(coded.map((m) => m.serverCpu))} s`,
    );
    console.log(
      `peak memory: client ${formatBytes(clientPeak)}, server ${formatBytes(serverPeak)} ` +
        `(target under 200 MB each)`,
    );
    // A second run over the unchanged file with --update: nothing is sent.
    const again = await ours(file, recv, { again: true });
    console.log(
      `file-tcp --update again over the unchanged ${formatBytes(size)}: ` +
        `${again.seconds.toFixed(2)} s (the client reads the file once for its proof, ` +
        "the server its stored copy the first time; 0 bytes sent)",
    );
    if (files > 0) await treeRounds(work, files, rounds);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
