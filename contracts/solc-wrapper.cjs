// Node side of solc.sh: see that file. Uses the solc-js package from node_modules.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, 'node_modules', 'solc'));

const args = process.argv.slice(2);

if (args.includes('--version') || args.includes('-v')) {
  const v = solc.version().replace(/\.Emscripten\.clang$/, '.Linux.g++');
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${v}\n`);
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc.sh: only --version and --standard-json are supported\n');
  process.exit(2);
}

// Roots that imports may be resolved against (forge passes --base-path, --include-path,
// --allow-paths; sources normally arrive inline in the JSON, so this is a fallback).
const roots = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if ((a === '--base-path' || a === '--include-path') && args[i + 1]) roots.push(args[++i]);
  else if (a === '--allow-paths' && args[i + 1]) roots.push(...args[++i].split(','));
}

function findImports(p) {
  const candidates = path.isAbsolute(p) ? [p] : roots.map((r) => path.resolve(r, p));
  for (const c of candidates) {
    try {
      return { contents: fs.readFileSync(c, 'utf8') };
    } catch (_) { /* try the next root */ }
  }
  return { error: `File not found: ${p}` };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
