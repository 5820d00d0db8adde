// The systems `pollen bench fanout` knows, in their default order (kept apart so the CLI can list
// them without loading the benchmark).
export const SYSTEM_NAMES = ['direct', 'proxy-cache', 'bittorrent', 'pollen'] as const;
