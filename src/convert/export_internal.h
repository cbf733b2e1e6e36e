/*
 * export_internal.h - what the exporters of src/convert/ share (export.c:
 * safetensors; export_hf.c: a Hugging Face directory; export_gguf.c: GGUF).
 */
#ifndef MIXQ_EXPORT_INTERNAL_H
#define MIXQ_EXPORT_INTERNAL_H

#include <stddef.h>

#include "mixq_tools.h"

/*
 * Writes tensors [first, first + n) of the open container f (shown as
 * container_path in messages) as one dequantized safetensors file at
 * out_path, atomically, as mixq_export does; hf = 1 adds "format": "pt" to
 * its __metadata__ when the source had none.
 */
mixq_status mx_export_st(const mixq_file *f, const char *container_path, size_t first, size_t n, const char *out_path,
                         const mixq_export_options *opts, int hf, mixq_error *err);

#endif
