// Prints the metadata and tensor infos of a GGUF file as JSON, parsed by the
// independent @huggingface/gguf reader (used by tests/python/test_interop.py).
// usage: node gguf_meta.mjs FILE.gguf
import { gguf } from "@huggingface/gguf";

const path = process.argv[2];
const { metadata, tensorInfos, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
const big = (k, v) => (typeof v === "bigint" ? Number(v) : v);
process.stdout.write(JSON.stringify({ metadata, tensorInfos, tensorDataOffset }, big));
