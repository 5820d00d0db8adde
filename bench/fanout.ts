// `npm run bench:fanout -- [flags]`: the same as `pollen bench fanout [flags]`.
import { main } from '../cli/main.ts';

await main([process.argv[0] ?? 'node', 'pollen', 'bench', 'fanout', ...process.argv.slice(2)]);
