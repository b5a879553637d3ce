// Builds the package: dist/index.js (ES module), dist/streamfarm.min.js (minified, for the size
// goal and for pages), the .d.ts types (tsc), and the dashboard bundle (src/dashboard, with uPlot).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { mkdirSync, readFileSync, copyFileSync, writeFileSync } from 'node:fs';

const common = { bundle: true, format: 'esm', target: 'es2022', logLevel: 'warning' };
await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.js' });
await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/streamfarm.min.js', minify: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.pages.json'], { stdio: 'inherit' }); // the pages, type-checked

// The pages every node serves (the dashboard at /, the price grid at /grid): bundled with uPlot
// from node_modules here, at build time; the node embeds dist/dashboard/ and serves it (no CDN).
mkdirSync('dist/dashboard', { recursive: true });
await build({ ...common, entryPoints: ['src/dashboard/dashboard.ts', 'src/dashboard/grid.ts'], outdir: 'dist/dashboard', minify: true });
for (const f of ['dashboard.html', 'grid.html', 'streamfarm.css']) copyFileSync(`src/dashboard/${f}`, `dist/dashboard/${f}`);
copyFileSync('node_modules/uplot/dist/uPlot.min.css', 'dist/dashboard/uPlot.min.css');

const min = readFileSync('dist/streamfarm.min.js');
const size = { minified: min.length, gzip: gzipSync(min, { level: 9 }).length };
writeFileSync('dist/size.json', JSON.stringify(size) + '\n');
console.log(`streamfarm.min.js: ${size.minified} B minified, ${size.gzip} B min+gzip`);
