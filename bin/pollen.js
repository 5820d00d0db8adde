#!/usr/bin/env node
// The `pollen` command. Pollen runs its TypeScript sources directly through tsx's loader:
// no build step, so a clean clone works right after `npm ci` and stack traces point at the sources.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
await main(process.argv);
