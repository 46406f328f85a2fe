// Owns a worker for the worker adapter tests (workers.test.ts): echoes what the parent sends, answers
// on a MessagePort handed over in the spawn data, and throws when asked to.

import { connectParent } from '../../src/platform/workers.ts';

const parent = await connectParent();
const data = parent.data as { greeting: string; port?: MessagePort; bytes?: ArrayBuffer };
if (data.port) {
  data.port.onmessage = (e) => data.port!.postMessage({ portEcho: e.data });
}
parent.onmessage = (e) => {
  const msg = e.data as { kind: string; value?: unknown };
  if (msg.kind === 'boom') setTimeout(() => { throw new Error('boom in worker'); }, 0);
  else if (msg.kind === 'buffer') {
    const b = msg.value as ArrayBuffer;
    parent.postMessage({ kind: 'buffer', value: b, size: b.byteLength }, [b]);
  } else parent.postMessage({ kind: 'echo', value: msg.value });
};
parent.postMessage({ kind: 'hello', greeting: data.greeting, bytes: data.bytes?.byteLength ?? -1 });
