/** Where a socket back end listens or connects: TCP (`inet`) or a UNIX socket, as QEMU's `addr.type=`. */
export type SocketAddress = { readonly type: 'inet'; readonly host: string; readonly port: number } | { readonly type: 'unix'; readonly path: string };

export function describeAddress(address: SocketAddress): string {
  return address.type === 'unix' ? address.path : `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}
