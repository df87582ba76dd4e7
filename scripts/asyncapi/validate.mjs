import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'fs';
const parser = new Parser();
const file = process.argv[2];
const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
const errors = diagnostics.filter(d => d.severity === 0);
for (const d of diagnostics) console.log(['error','warning','info','hint'][d.severity], d.code, d.message, JSON.stringify(d.path));
if (!document || errors.length) { console.log(`${file}: ${errors.length} error(s)`); process.exit(1); }
console.log(`${file}: valid AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.messages().length} messages`);
