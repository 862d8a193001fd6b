/**
 * Socket set-up shared by every tool, with errors a user can act on.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { UserError } from "../core/errors.ts";
import { describeError } from "../io/errors.ts";

/**
 * The address of a UDP server as its datagrams will come from: `host`
 * resolved to one IP address (IPv4 first), so that a client can accept
 * datagrams from that host and port only.
 */
export async function resolveUdpServer(host: string, port: number): Promise<Deno.NetAddr> {
  let hostname = host;
  if (!isIP(host)) {
    try {
      hostname = (await lookup(host, { family: 4 }).catch(() => lookup(host))).address;
    } catch (err) {
      throw new UserError(describeError(err, `Could not resolve ${host}`));
    }
  }
  return { transport: "udp", hostname, port };
}

/** Whether a datagram's source is `server`, host and port. */
export function sameAddress(from: Deno.Addr, server: Deno.NetAddr): boolean {
  return from.transport === "udp" && from.hostname === server.hostname &&
    from.port === server.port;
}

/**
 * Connects over TCP, giving up after `timeoutMs` if given (a host that
 * drops the SYN would otherwise hold the caller for minutes); failures
 * become one-line {@link UserError}s.
 */
export async function connectTo(
  host: string,
  port: number,
  timeoutMs?: number,
): Promise<Deno.TcpConn> {
  const connecting = Deno.connect({ hostname: host, port, transport: "tcp" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    if (timeoutMs === undefined) return;
    timer = setTimeout(() => {
      // One that connects after all is closed at once.
      connecting.then((c) => c.close(), () => {});
      reject(new UserError(`Could not connect to ${host}:${port} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([connecting, late]);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(describeError(err, `Could not connect to ${host}:${port}`));
  } finally {
    clearTimeout(timer);
  }
}

/** Listens on TCP; a port in use or a bad address becomes a {@link UserError}. */
export function listenTcp(host: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: host, port, transport: "tcp" });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new UserError(`Port ${port} on ${host} is already in use`);
    }
    throw new UserError(describeError(err, `Could not listen on ${host}:${port}`));
  }
}

/** Opens a UDP socket with errors a user can act on. */
export function listenUdp(host: string, port: number): Deno.DatagramConn {
  try {
    return Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new UserError(`UDP port ${port} on ${host} is already in use`);
    }
    throw new UserError(describeError(err, `Could not listen on UDP ${host}:${port}`));
  }
}

/**
 * Opens the client's UDP socket for talking to `host`: on loopback when the
 * server is on loopback, else on every address of the server's family.
 */
export function openUdpClientSocket(host: string): Deno.DatagramConn {
  const loopback = /^(127\.|localhost$|::1$)/.test(host);
  try {
    return Deno.listenDatagram({
      hostname: loopback ? "127.0.0.1" : host.includes(":") ? "::" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
  } catch (err) {
    throw new UserError(describeError(err, "Could not open a UDP socket"));
  }
}
