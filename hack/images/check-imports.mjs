// Run inside an image (chroot or container): imports every module under /app/*/dist that is not an
// executable (a file with a shebang runs its CLI on import), proving that everything they import is
// in the image. Prints "imported N, failed M" and exits 1 on any failure.
import { readdirSync, readFileSync } from 'node:fs';

const files = [];
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${entry.name}`;
    if (entry.isDirectory()) walk(p);
    else if (p.endsWith('.js')) files.push(p);
  }
};
for (const name of readdirSync('/app')) {
  if (name !== 'node_modules' && !name.startsWith('.')) {
    try {
      walk(`/app/${name}/dist`);
    } catch {
      // not a workspace (crds/)
    }
  }
}
let ok = 0;
let failed = 0;
for (const file of files.sort()) {
  if (readFileSync(file, 'utf8').startsWith('#!')) continue;
  try {
    await import(file);
    ok++;
  } catch (e) {
    failed++;
    console.log(`FAIL ${file}: ${String(e?.message ?? e).split('\n')[0]}`);
  }
}
console.log(`imported ${ok}, failed ${failed}`);
process.exit(failed ? 1 : 0);
