// Regenerates api/src/generated/crds.ts from crds/*.yaml (npm run gen). Runs straight from source
// under Node's type stripping: node hack/gen-api-types.ts [--check]
// --check writes nothing and exits 1 if the committed file is stale (for CI).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCrdTypes } from '../api/src/crd-codegen.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const crdDir = path.join(root, 'crds');
const output = path.join(root, 'api', 'src', 'generated', 'crds.ts');
const check = process.argv.includes('--check');

const generated = await generateCrdTypes(crdDir);
const current = await readFile(output, 'utf8').catch(() => undefined);
const relative = path.relative(root, output);

if (current === generated) {
  console.log(`${relative} is up to date`);
} else if (check) {
  console.error(`${relative} is stale: run npm run gen`);
  process.exitCode = 1;
} else {
  await mkdir(path.dirname(output), { recursive: true });
  await writeFile(output, generated);
  console.log(`wrote ${relative}`);
}
