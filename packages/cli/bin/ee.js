#!/usr/bin/env node
// The `ee` executable. A committed shim, so npm can link the bin at install time, before `tsc` has built
// dist/. It loads the compiled CLI, or says how to build it.
try {
  await import('../dist/main.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('ee: not built yet: run `npm run build` (or `npm start`) in the repository root\n');
    process.exit(1);
  }
  throw err;
}
