// Reference ids from the Hugging Face tokenizers library (@anush008/tokenizers)
// for tests/test_tokenizer_json.c.
//   node ref.js TOKENIZER_JSON STRINGS   STRINGS: UTF-8 texts separated by NUL bytes;
//                                        prints one line per text: the space-separated ids, a tab,
//                                        and the hex UTF-8 bytes of decoding them (special tokens skipped)
//   node ref.js --check                  exits 0 if the packages load, 77 if not
//   node ref.js --variant KIND IN OUT    writes IN with other normalizer/pre-tokenizer settings:
//                                        gpt2 (ByteLevel with its regex and a prefix space),
//                                        metaspace-first (Metaspace, prepend_scheme first, no split),
//                                        metaspace-split (Metaspace, prepend_scheme always, split)
const fs = require('fs');
let Tokenizer;
try {
  ({ Tokenizer } = require('@anush008/tokenizers'));
} catch (e) {
  process.exit(77);
}
if (process.argv[2] === '--check') process.exit(0);
if (process.argv[2] === '--variant') {
  const j = JSON.parse(fs.readFileSync(process.argv[4], 'utf8'));
  const kind = process.argv[3];
  j.normalizer = null;
  if (kind === 'gpt2') {
    j.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  } else {
    j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: kind === 'metaspace-first' ? 'first' : 'always',
                        split: kind === 'metaspace-split' };
  }
  fs.writeFileSync(process.argv[5], JSON.stringify(j));
  process.exit(0);
}
(async () => {
  const tok = Tokenizer.fromFile(process.argv[2]);
  const texts = fs.readFileSync(process.argv[3]).toString('utf8').split('\0');
  const out = [];
  for (const t of texts) {
    const e = await tok.encode(t, null, { addSpecialTokens: false });
    const ids = e.getIds();
    const text = await tok.decode(ids, true);
    out.push(ids.join(' ') + '\t' + Buffer.from(text, 'utf8').toString('hex'));
  }
  process.stdout.write(out.join('\n') + '\n');
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
