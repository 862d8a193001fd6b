/**
 * `deno task bench-file [--size 1G] [--rounds 3]`: times a loopback File-TCP
 * transfer against the baseline `nc` with `md5sum` on both ends, run side by
 * side in the same run, and prints the ratio and both tools' peak memory.
 * The same transfer with a shared code (SPAKE2, every frame sealed) runs
 * beside them, and so does `scp` (OpenSSH's default cipher, key login to
 * an `sshd` started on loopback for the bench) where sshd is installed.
 *
 * Baseline, in two forms run side by side (the ratio is against the faster):
 * `tee >(md5sum) < FILE | nc -N`, and `md5sum FILE & nc -N < FILE`, each
 * into `nc -l | tee OUT | md5sum`.
 * Ours: `tcp/file_client.ts` into `tcp/file_server.ts`, each a process.
 * It runs with --allow-all because Deno grants /proc (peak memory) only so.
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

/** Watches a process's peak memory until `done` settles. */
async function watchPeak(pid: number, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  done.finally(() => finished = true);
  while (!finished) {
    peak = Math.max(peak, await peakRss(pid));
    await new Promise((r) => setTimeout(r, 20));
  }
  return peak;
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

interface OursResult {
  seconds: number;
  clientPeak: number;
  serverPeak: number;
}

async function ours(file: string, dir: string, code?: string): Promise<OursResult> {
  const env = code ? { SOCKETS_CODE: code } : undefined;
  await using server = await startServerTool(
    "tcp/file_server.ts",
    ["--port", "0", "--dir", dir, "--overwrite"],
    { permissions: FILE_SERVER_PERMS, env },
  );
  try {
    return await timeClient(file, server.port, server.child.pid, env);
  } finally {
    await server.stop();
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile) await Deno.remove(join(dir, e.name));
    }
  }
}

async function timeClient(
  file: string,
  port: number,
  serverPid: number,
  env?: Record<string, string>,
): Promise<OursResult> {
  const start = performance.now();
  const client = toolCommand("tcp/file_client.ts", ["--port", String(port), file], {
    permissions: FILE_CLIENT_PERMS,
    stderr: "null",
    env,
  }).spawn();
  const exit = client.output();
  const clientPeak = watchPeak(client.pid, exit);
  const out = await exit;
  const seconds = (performance.now() - start) / 1000;
  if (out.code !== 0) throw new UserError("File client failed");
  const serverPeak = await peakRss(serverPid);
  return { seconds, clientPeak: await clientPeak, serverPeak };
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
    scp: async (file: string, out: string) => {
      const start = performance.now();
      const r = await new Deno.Command("scp", {
        args: [
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
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (r.code !== 0) throw new UserError(`scp failed: ${new TextDecoder().decode(r.stderr)}`);
      return (performance.now() - start) / 1000;
    },
    stop: async () => {
      sshd.kill();
      await sshd.status;
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const FLAGS = {
  size: { type: "string", default: "1G", value: "SIZE", help: "size of the test file" },
  rounds: { type: "string", default: "3", value: "N", help: "rounds of each, alternating" },
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
    summary: "Time File-TCP against nc + md5sum on loopback, side by side.",
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
        coded.push(await ours(file, recv, CODE));
        if (ssh) {
          scps.push(await ssh.scp(file, join(work, "scp-out.bin")));
          await Deno.remove(join(work, "scp-out.bin"));
        }
        console.log(
          `round ${i + 1}: nc+md5sum (tee) ${base[i].toFixed(2)} s, nc+md5sum (beside) ${
            beside[i].toFixed(2)
          } s, file-tcp ${mine[i].seconds.toFixed(2)} s, file-tcp with a code ${
            coded[i].seconds.toFixed(2)
          } s` +
            (ssh ? `, scp ${scps[i].toFixed(2)} s` : ""),
        );
      }
    } finally {
      await ssh?.stop();
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
    console.log(
      `peak memory: client ${formatBytes(clientPeak)}, server ${formatBytes(serverPeak)} ` +
        `(target under 200 MB each)`,
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
