# Owns the workerd configuration of the smoke test. test/workerd/run.ts copies it next to the bundled
# worker.js and the release kernels.wasm, and overrides the socket address with a free loopback port.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .smokeWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const smokeWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    # A wasm module here is compiled by workerd at load time and imported as a WebAssembly.Module;
    # the worker itself may not compile bytes (code generation is disallowed).
    (name = "kernels.wasm", wasm = embed "kernels.wasm"),
  ],
  # Must not be newer than the workerd binary (1.20261117.1 → 2026-11-17).
  compatibilityDate = "2025-09-01",
);
