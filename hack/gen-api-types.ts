// Regenerates api/src/generated/crds.ts from crds/*.yaml and copies the CRDs into the Helm chart
// (charts/chaperone/crds) (npm run gen). Runs straight from source under Node's type stripping:
// node hack/gen-api-types.ts [--check]
// --check writes nothing and exits 1 if a committed file is stale (for CI).
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

// Helm installs CRDs from the chart's crds/ folder, which cannot point elsewhere: keep exact copies.
const chartCrdDir = path.join(root, 'charts', 'chaperone', 'crds');
const yamlIn = async (dir: string) =>
  (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.yaml')).sort();
const sources = await yamlIn(crdDir);
for (const stale of (await yamlIn(chartCrdDir)).filter((f) => !sources.includes(f))) {
  if (check) {
    console.error(`charts/chaperone/crds/${stale} has no source in crds/: run npm run gen`);
    process.exitCode = 1;
  } else {
    await rm(path.join(chartCrdDir, stale));
    console.log(`removed charts/chaperone/crds/${stale}`);
  }
}
for (const file of sources) {
  const source = await readFile(path.join(crdDir, file), 'utf8');
  const copy = await readFile(path.join(chartCrdDir, file), 'utf8').catch(() => undefined);
  if (copy === source) continue;
  if (check) {
    console.error(`charts/chaperone/crds/${file} differs from crds/${file}: run npm run gen`);
    process.exitCode = 1;
  } else {
    await mkdir(chartCrdDir, { recursive: true });
    await writeFile(path.join(chartCrdDir, file), source);
    console.log(`copied crds/${file} to charts/chaperone/crds/`);
  }
}
