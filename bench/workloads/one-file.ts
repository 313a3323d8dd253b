import type { Workload } from '../lib/context.js';
import { unavailable } from '../lib/context.js';
export const oneFileChange: Workload = { id: 'one-file', title: 'x', run: async () => [{ id: 'one-file', title: 'x', params: {}, stowage: unavailable('stowage', 'todo'), notes: [] }] };
