// Runs a wasm32-wasip1 command in Node's V8 (WASI preview 1).
//
//     node --no-liftoff run.mjs MODULE.wasm [ARGS...]
//
// The module links the filter's library, so it also imports the proxy-wasm
// host functions; nothing here calls them, and each is a stub that fails.
// `--no-liftoff` keeps V8 on its optimizing compiler, as Envoy does.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [path, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [path, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(path));
const imports = wasi.getImportObject();
imports.env = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module === 'env') {
    imports.env[imp.name] = () => { throw new Error(`host function ${imp.name} called`); };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// A command module; the reactor entry point the library brings along
// (`_initialize`) is not handed to WASI, which refuses a module with both.
process.exitCode = wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
