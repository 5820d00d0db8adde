// `npm run bench:sim -- [flags]`: the same as `pollen bench sim [flags]`.
import { main } from '../cli/main.ts';

await main([process.argv[0] ?? 'node', 'pollen', 'bench', 'sim', ...process.argv.slice(2)]);
