"""mixq: a pure-Python (numpy) reader of mixq containers (.mxq, format/FORMAT.md).

    import mixq
    with mixq.open("model.mxq") as f:
        for t in f.tensors():
            print(t.name, t.shape, t.quant_type, t.group_size)
        f.verify()
        w = f["model.embed_tokens.weight"].dequantize()   # numpy float32
"""
from ._xxh3 import HAVE_XXHASH_MODULE, xxh3_64, xxh3_64_pure
from .reader import (ChecksumError, File, FormatError, MixqError, MixqIOError, NotFoundError, RangeError,
                     Section, StoredFile, Tensor, UnsupportedError, open)

__version__ = "0.1.0"
FORMAT_VERSION = 1

__all__ = ["open", "File", "Tensor", "Section", "StoredFile", "MixqError", "FormatError", "UnsupportedError",
           "ChecksumError", "MixqIOError", "NotFoundError", "RangeError", "xxh3_64", "xxh3_64_pure",
           "HAVE_XXHASH_MODULE", "FORMAT_VERSION", "__version__"]
