// The physical lower bound of a fan-out on shaped links:
//   T* = max(S / u_registry, S / d_peer, N·S / (u_registry + Σ u_peer))
// (the origin must send every byte once; each peer must receive S; and all N·S bytes received
// must be sent by someone's upload). Rates in Mbit/s (10^6 bit/s), sizes in bytes.

export interface FanoutLinks {
  registryUpMbit: number;
  /** Download cap of the slowest peer. */
  peerDownMbit: number;
  /** Upload caps of the N peers. */
  peerUpMbit: readonly number[];
}

function bytesPerS(mbit: number): number {
  return (mbit * 1e6) / 8;
}

export function lowerBoundSeconds(imageBytes: number, links: FanoutLinks): number {
  const n = links.peerUpMbit.length;
  const uploadSum = bytesPerS(links.registryUpMbit) + links.peerUpMbit.reduce((s, u) => s + bytesPerS(u), 0);
  return Math.max(imageBytes / bytesPerS(links.registryUpMbit), imageBytes / bytesPerS(links.peerDownMbit), (n * imageBytes) / uploadSum);
}
