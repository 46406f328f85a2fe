// Owns the type of `.wasm` imports in workerd workers: a module listed in config.capnp as `wasm`
// arrives precompiled.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
