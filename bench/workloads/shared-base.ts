import type { Workload } from '../lib/context.js';
import { unavailable } from '../lib/context.js';
export const sharedBase: Workload = { id: 'shared-base', title: 'x', run: async () => [{ id: 'shared-base', title: 'x', params: {}, stowage: unavailable('stowage', 'todo'), notes: [] }] };
