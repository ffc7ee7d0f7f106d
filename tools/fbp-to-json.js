#!/usr/bin/env node
// Prints the FBP JSON graph that the noflo `fbp` package (pinned in package.json) parses from
// a .fbp file, with its default options (caseSensitive false). tests/graph_fbp.rs checks flowd's
// own .fbp reader against it; regenerate fixtures with:
//   node tools/fbp-to-json.js tests/data/fbp/x.fbp > tests/data/fbp/x.json
'use strict';

const fs = require('fs');
const fbp = require('fbp');

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node tools/fbp-to-json.js FILE.fbp\n');
  process.exit(2);
}
const text = fs.readFileSync(file, 'utf8');
try {
  const graph = fbp.parse(text, { caseSensitive: false });
  process.stdout.write(JSON.stringify(graph, null, 2) + '\n');
} catch (e) {
  const where = e.location ? ` at line ${e.location.start.line}, column ${e.location.start.column}` : '';
  process.stderr.write(`fbp: ${e.message}${where}\n`);
  process.exit(1);
}
