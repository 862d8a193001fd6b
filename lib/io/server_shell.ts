/**
 * The shell every server shares: the loopback rule, listening, accepting,
 * admission (the {@link Admission} core: connections in all and per
 * address, handshakes under way, guesses at the code), and a close that
 * runs once. A tool gives it what to do with a connection it admitted,
 * how to turn one away, and what to stop on close; the shell owns the
 * listener, the connections and their tasks.
 *
 * A TCP server (Audio-TCP; File-TCP the same way) is {@link startTcpShell};
 * a UDP server (Audio-UDP) is {@link startUdpShell}, whose admission is
 * its listener table core's.
 *
 * @module
 */
import { requireCodeBeyondLoopback } from "../core/crypto/admission.ts";
import { Admission, type Refusal } from "../core/crypto/server_admission.ts";
import { closeQuietly, describeError } from "./errors.ts";
import { listenTcp, listenUdp } from "./net.ts";

/** A close that does its work once, however often it is called. */
export function closeOnce(work: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => closing ??= work();
}

/** A connection the shell admitted, as the tool's handler sees it. */
export interface Admitted {
  /** The connection; the shell closes it when the handler ends. */
  readonly conn: Deno.TcpConn;
  /** Its peer's address. */
  readonly peer: Deno.NetAddr;
  /** `host:port`, for log lines. */
  readonly who: string;
  /** With a code: the handshake ended (proven, failed or cut). Idempotent. */
  handshakeEnded(): void;
  /** The connection counts as served (per address and in all) from now until it ends. Idempotent. */
  join(): void;
}

/** Options of {@link startTcpShell}. */
export interface TcpShellOptions {
  /** Address to listen on. */
  host: string;
  /** Port (0 picks a free one). */
  port: number;
  /** The server's code: beyond loopback there must be one. */
  code?: string;
  /** Most connections served at once. */
  maxTotal: number;
  /** Most connections served at once from one address. */
  maxPerHost: number;
  /** Count a connection as served from its accept (else from the handler's {@link Admitted.join}). */
  joinOnAccept?: boolean;
  /** Turns a connection away: tells the peer (or not) and logs; the shell closes it after. */
  refuse(conn: Deno.TcpConn, peer: Deno.NetAddr, why: Refusal): Promise<void>;
  /** Serves one admitted connection until it ends. */
  serve(admitted: Admitted): Promise<void>;
}

/** A listening TCP server's shell. */
export interface TcpShell {
  /** Address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Connections served, in all and per address; guesses at the code. */
  readonly admission: Admission;
  /** Whether {@link close} began. */
  readonly stopping: boolean;
  /** Stops listening, closes every connection and waits for their handlers. Idempotent. */
  close(): Promise<void>;
}

/** Listens and serves each connection it admits with `options.serve`. */
export function startTcpShell(options: TcpShellOptions): TcpShell {
  requireCodeBeyondLoopback(options.host, options.code);
  const listener = listenTcp(options.host, options.port);
  const admission = new Admission({
    maxTotal: options.maxTotal,
    maxPerHost: options.maxPerHost,
    coded: options.code !== undefined,
  });
  const conns = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  let stopping = false;
  const track = (p: Promise<void>) => {
    tasks.add(p);
    p.finally(() => tasks.delete(p));
  };
  const turnAway = (conn: Deno.TcpConn, peer: Deno.NetAddr, why: Refusal) =>
    track(options.refuse(conn, peer, why).catch(() => {}).finally(() => closeQuietly(conn)));
  const accepting = (async () => {
    for await (const conn of listener) {
      const peer = conn.remoteAddr as Deno.NetAddr;
      const full = admission.full(peer.hostname);
      if (full) {
        turnAway(conn, peer, full);
        continue;
      }
      conn.setNoDelay(true);
      const busy = admission.enterHandshake(peer.hostname);
      if (busy) {
        turnAway(conn, peer, busy);
        continue;
      }
      conns.add(conn);
      track(
        serveOne(options, admission, conn, peer).finally(() => conns.delete(conn)),
      );
    }
  })().catch(() => {});
  return {
    addr: listener.addr as Deno.NetAddr,
    admission,
    get stopping() {
      return stopping;
    },
    close: closeOnce(async () => {
      stopping = true;
      closeQuietly(listener);
      for (const c of conns) closeQuietly(c);
      await accepting;
      await Promise.allSettled([...tasks]);
    }),
  };
}

/** Runs the tool's handler on one admitted connection, and ends its admission after. */
async function serveOne(
  options: TcpShellOptions,
  admission: Admission,
  conn: Deno.TcpConn,
  peer: Deno.NetAddr,
): Promise<void> {
  let shaking = true;
  let joined = false;
  const admitted: Admitted = {
    conn,
    peer,
    who: `${peer.hostname}:${peer.port}`,
    handshakeEnded: () => {
      if (shaking) admission.leaveHandshake(peer.hostname);
      shaking = false;
    },
    join: () => {
      if (!joined) admission.join(peer.hostname);
      joined = true;
    },
  };
  if (options.joinOnAccept) admitted.join();
  try {
    await options.serve(admitted);
  } finally {
    admitted.handshakeEnded();
    if (joined) admission.leave(peer.hostname);
    closeQuietly(conn);
  }
}

/** Options of {@link startUdpShell}. */
export interface UdpShellOptions {
  /** Address to listen on. */
  host: string;
  /** Port (0 picks a free one). */
  port: number;
  /** The server's code: beyond loopback there must be one. */
  code?: string;
  /** The datagrams to answer one with (the tool's core decides, and admits). */
  receive(d: Uint8Array, from: Deno.NetAddr): Uint8Array[];
  /** Counts a datagram sent. */
  sent(): void;
  /** Where a failing socket is told. */
  log(line: string): void;
}

/** A listening UDP server's shell. */
export interface UdpShell {
  /** Address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Sends `d` to `to`; a send that fails is dropped, as a lost datagram would be. */
  send(d: Uint8Array, to: Deno.NetAddr): void;
  /** Closes the socket and waits for its read loop. Idempotent. */
  close(): Promise<void>;
}

/** Opens a UDP socket and answers every datagram with what `options.receive` says. */
export function startUdpShell(options: UdpShellOptions): UdpShell {
  requireCodeBeyondLoopback(options.host, options.code);
  const socket = listenUdp(options.host, options.port);
  let stopping = false;
  const send = (d: Uint8Array, to: Deno.NetAddr) => {
    socket.send(d, to).then(options.sent, () => {});
  };
  const reading = (async () => {
    for await (const [d, a] of socket) {
      const from = a as Deno.NetAddr;
      for (const reply of options.receive(d, from)) send(reply, from);
    }
  })().catch((err) => {
    if (!stopping) options.log(`UDP socket failed: ${describeError(err)}`);
  });
  return {
    addr: socket.addr as Deno.NetAddr,
    send,
    close: closeOnce(async () => {
      stopping = true;
      closeQuietly(socket);
      await reading;
    }),
  };
}
