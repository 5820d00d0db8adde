import { EventQueue } from '../../../../bench/sim/event-queue.ts';
import { QueueClock } from '../../../../bench/sim/queue-clock.ts';
import { clockConformance } from '../../src/clock.conformance.ts';

clockConformance('QueueClock', () => {
  const queue = new EventQueue();
  return {
    clock: new QueueClock(queue),
    wait: async (ms) => {
      const until = queue.now + ms;
      queue.at(until, () => {});
      queue.run({ untilMs: until });
    },
  };
});
