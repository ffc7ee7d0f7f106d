// Turns one JavaScript component into a WebAssembly component with componentize-js:
//
//   node componentize.mjs SOURCE.js WIT_DIR OUT.wasm
//
// componentize-js runs its splicer under WASI with preview2-shim, which starts with no
// preopens, so it cannot read the WIT files: give it the whole file system first. It names the
// module by the source path relative to the working directory, so run this from an ancestor of
// the source (build-js.sh runs it from the repository root). `fetch` is on (the `http`
// feature, on wasi:http, within the operator's grants); the incoming fetch event is off.
import fs from 'node:fs/promises';
import path from 'node:path';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';

_setPreopens({ '/': '/' });
const { componentize } = await import('@bytecodealliance/componentize-js');

const [source, wit, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node componentize.mjs SOURCE.js WIT_DIR OUT.wasm');
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: path.resolve(source),
  witPath: path.resolve(wit),
  worldName: 'flowd-component',
  enableFeatures: ['http'],
  disableFeatures: ['fetch-event'],
});
await fs.writeFile(out, component);
