// A private copy of the built code for one benchmark run. Others may rebuild packages/*/dist while the
// benchmark runs (a control plane that lazily loads a module from a half-written dist dies mid-run), so the
// run copies every package's dist + package.json into a temp dir once, at the start, and runs from there.
// node_modules entries are symlinked back to the repository's (third-party code does not change), except
// @easyenclave/*, which point at the copies.

import { cpSync, existsSync, mkdirSync, readdirSync, symlinkSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpDir } from './procs.mjs';

export function snapshotBuild(repoRoot) {
  const root = tmpDir('ee-bench-code-');
  const pkgs = readdirSync(join(repoRoot, 'packages')).filter((p) =>
    existsSync(join(repoRoot, 'packages', p, 'package.json')),
  );
  for (const p of pkgs) {
    const src = join(repoRoot, 'packages', p);
    const dst = join(root, 'packages', p);
    mkdirSync(dst, { recursive: true });
    copyFileSync(join(src, 'package.json'), join(dst, 'package.json'));
    if (existsSync(join(src, 'dist'))) cpSync(join(src, 'dist'), join(dst, 'dist'), { recursive: true });
  }
  copyFileSync(join(repoRoot, 'package.json'), join(root, 'package.json'));
  const nm = join(root, 'node_modules');
  mkdirSync(join(nm, '@easyenclave'), { recursive: true });
  for (const e of readdirSync(join(repoRoot, 'node_modules'))) {
    if (e !== '@easyenclave') symlinkSync(join(repoRoot, 'node_modules', e), join(nm, e));
  }
  for (const p of pkgs) symlinkSync(join(root, 'packages', p), join(nm, '@easyenclave', p));
  return root;
}
