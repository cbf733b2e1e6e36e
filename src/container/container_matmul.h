/* container_matmul.h - a container tensor's type, layout and bytes for the fused matmul (kernels/matmul.h). */
#ifndef MIXQ_CONTAINER_MATMUL_H
#define MIXQ_CONTAINER_MATMUL_H

#include <stdint.h>

#include "kernels/qtype.h"
#include "mixq.h"

/*
 * For a 2-D tensor of a quantized or plain type: *qt, *lay and *base (the
 * tensor's first byte in the mapping) as mx_matmul takes them, after checking
 * every section against the layout.  *qt is NULL (and MIXQ_OK) for a tensor
 * mx_matmul cannot take (raw, not 2-D).
 */
mixq_status mx_container_matmul_layout(const mixq_tensor *w, const qtype_desc **qt, qlayout *lay,
                                       const uint8_t **base, mixq_error *err);

#endif
