/**
 * Socket set-up shared by every tool, with errors a user can act on.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { describeError } from "../io/errors.ts";

/** Connects over TCP; failures become one-line {@link UserError}s. */
export async function connectTo(host: string, port: number): Promise<Deno.TcpConn> {
  try {
    return await Deno.connect({ hostname: host, port, transport: "tcp" });
  } catch (err) {
    throw new UserError(describeError(err, `Could not connect to ${host}:${port}`));
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

/** A TCP port on loopback that was free a moment ago (for tests and benches). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
