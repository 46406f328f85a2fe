// Owns a worker module that fails while loading, for the worker adapter tests (workers.test.ts).

throw new Error('broken worker module');
