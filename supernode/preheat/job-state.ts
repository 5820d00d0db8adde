// The state machines of a preheat job and of its parts, as typed unions with explicit transition
// tables: a move the table does not list throws ERR_ILLEGAL_TRANSITION (a finished job never
// runs again; a done task never fails). The records are plain JSON so they persist in level as is.
import { PollenError } from '../../src/errors.ts';

export type JobState =
  | { readonly name: 'pending' }
  | { readonly name: 'running'; readonly since: number; readonly deadline: number }
  | { readonly name: 'succeeded'; readonly at: number }
  | { readonly name: 'failed'; readonly at: number; readonly code: string; readonly reason: string };

/** A blob on one holder (the seed or a peer). */
export type TaskState =
  | { readonly name: 'waiting'; readonly attempts: number; readonly lastError?: string }
  | { readonly name: 'active'; readonly attempts: number; readonly since: number }
  | { readonly name: 'done'; readonly attempts: number }
  | { readonly name: 'failed'; readonly attempts: number; readonly reason: string };

type Name<S extends { name: string }> = S['name'];

const JOB_MOVES: Record<Name<JobState>, ReadonlyArray<Name<JobState>>> = {
  pending: ['running', 'failed'],
  running: ['succeeded', 'failed'],
  succeeded: [],
  failed: [],
};

const TASK_MOVES: Record<Name<TaskState>, ReadonlyArray<Name<TaskState>>> = {
  waiting: ['active', 'failed', 'done'],
  // active → waiting is a retry (or a restart handing the task out again).
  active: ['done', 'waiting', 'failed'],
  done: [],
  failed: [],
};

function check<S extends { name: string }>(table: Record<string, ReadonlyArray<string>>, what: string, from: S, to: S): S {
  if (!table[from.name]!.includes(to.name)) {
    throw new PollenError('ERR_ILLEGAL_TRANSITION', `${what} cannot move from ${from.name} to ${to.name}`, { from: from.name, to: to.name });
  }
  return to;
}

export function moveJob(from: JobState, to: JobState): JobState {
  return check(JOB_MOVES, 'a preheat job', from, to);
}

export function moveTask(from: TaskState, to: TaskState): TaskState {
  return check(TASK_MOVES, 'a preheat task', from, to);
}

export function isFinished(state: JobState): state is Extract<JobState, { name: 'succeeded' | 'failed' }> {
  return state.name === 'succeeded' || state.name === 'failed';
}

export function isSettled(state: TaskState): boolean {
  return state.name === 'done' || state.name === 'failed';
}
