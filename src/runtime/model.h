/*
 * model.h - a LLaMA-family model ready to run: its config.json and its
 * weights bound either from a mixq container (stored types, zero-copy) or
 * from a safetensors checkpoint (the source values, the exact reference).
 *
 * Every linear layer of the forward pass goes through rt_linear(); it is the
 * one place where the fused matmul kernels plug in.
 */
#ifndef MIXQ_RUNTIME_MODEL_H
#define MIXQ_RUNTIME_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"
#include "common/workpool.h"
#include "kernels/qtype.h"
#include "reader/st_reader.h"

typedef enum rt_arch { RT_ARCH_LLAMA, RT_ARCH_MISTRAL, RT_ARCH_QWEN2 } rt_arch;

#define RT_MAX_EOS 8

/* What config.json says (only the fields the forward pass uses). */
typedef struct rt_config {
    rt_arch arch;
    char model_type[32];
    int64_t hidden, intermediate, n_layers, n_heads, n_kv_heads, head_dim, vocab, max_pos;
    double norm_eps, rope_theta;
    int rope_llama3;                 /* rope_scaling of type llama3 */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_orig_max_pos;
    int tie_embeddings;
    int qkv_bias, o_bias;            /* biases of q/k/v (qwen2, attention_bias) and o_proj */
    int64_t sliding_window;          /* 0 = none (full causal attention) */
    int64_t bos_id;                  /* -1 if none */
    int64_t eos_ids[RT_MAX_EOS];
    int n_eos;
} rt_config;

/*
 * Parses a config.json text; `name` (the file) is used in messages.  Other
 * architectures fail with MIXQ_E_UNSUPPORTED and a message naming the
 * supported ones; missing or bad fields with MIXQ_E_FORMAT.
 */
mixq_status rt_config_parse(const char *name, const char *text, size_t len, rt_config *out,
                            mixq_error *err);

/* Reads and parses a config.json file. */
mixq_status rt_config_load(const char *path, rt_config *out, mixq_error *err);

/* One weight matrix [rows, cols] where it is stored: a container or a checkpoint. */
typedef struct rt_weight {
    const char *name;        /* the source (Hugging Face) tensor name */
    uint64_t rows, cols;
    const mixq_file *mf;     /* container ... */
    const mixq_tensor *mt;
    const st_model *sm;      /* ... or safetensors checkpoint */
    const st_tensor *st;
    const qtype_desc *qt;    /* how the fused matmul reads the bytes (NULL: rows are converted to f32, */
    qlayout lay;             /*   e.g. an F64 checkpoint tensor) */
    const uint8_t *base;
    const float *subst;      /* if set: these rows x cols f32 values replace the stored ones (rt_model_substitute) */
    const qtype_desc *subst_qt;
    qlayout subst_lay;
} rt_weight;

typedef struct rt_layer {
    float *attn_norm, *ffn_norm;             /* [hidden] */
    rt_weight wq, wk, wv, wo, w_gate, w_up, w_down;
    float *bq, *bk, *bv, *bo;                /* NULL when the config has none */
} rt_layer;

typedef struct rt_model {
    rt_config cfg;
    char *path;              /* as opened */
    char *config_path;
    int config_stored;       /* 1: config.json came from the container (FORMAT.md §3.3); its tokenizer is there too */
    mixq_file *mf;           /* exactly one of mf, sm */
    st_model *sm;
    rt_weight embed;         /* [vocab, hidden] */
    rt_weight lm_head;       /* [vocab, hidden]: embed's tensor when tied */
    float *final_norm;       /* [hidden] */
    rt_layer *layers;
} rt_model;

/*
 * Opens a model: a container (.mxq, recognised by its magic) or a safetensors
 * checkpoint (file, directory or index).  config.json is read from
 * config_dir if non-NULL, else from the container if it stores one
 * (FORMAT.md §3.3), else from the directory of the model (the model itself
 * if it is a directory).  Every tensor the config implies must exist
 * with the shape it implies; a mismatch names the tensor, the expected and
 * the found shape.
 */
mixq_status rt_model_open(const char *path, const char *config_dir, rt_model **out, mixq_error *err);

void rt_model_close(rt_model *m);

/*
 * y[t][r] = sum_c x[t][c] * W[r][c] for t < n_tokens, r < w->rows
 * (x is [n_tokens, cols], y is [n_tokens, rows], both row-major f32).
 * The fused matmul of kernels/matmul.h on the stored bytes (any container
 * type, a checkpoint's F32/F16/BF16); other dtypes are converted to f32 a
 * block of rows at a time.  Blocks run on the pool; the result does not
 * depend on the thread count.  The one function every linear layer goes
 * through.
 */
mixq_status rt_linear(const rt_weight *w, const float *x, size_t n_tokens, float *y, mx_pool *pool,
                      mixq_error *err);

/*
 * Makes every weight of m bound to tensor `name` (the embedding and a tied
 * head share one) compute with `values` (rows x cols f32, owned by the
 * caller and kept alive while in use) instead of its stored bytes; values
 * NULL restores the stored ones.  Nothing is copied.  Returns how many
 * weights were changed: 0 if the forward pass does not use the tensor.
 */
int rt_model_substitute(rt_model *m, const char *name, const float *values);

/* Rows [r0, r1) of w as f32 into out ((r1 - r0) * cols floats): embedding lookup. */
mixq_status rt_weight_rows(const rt_weight *w, uint64_t r0, uint64_t r1, float *out, mixq_error *err);

/* Reads a whole file (at most max bytes, else MIXQ_E_FORMAT) into a malloc'd buffer. */
mixq_status rt_read_file(const char *path, size_t max, char **out, size_t *len, mixq_error *err);

/* GGUF name of a weight ("blk.3.attn_q.weight", "output.weight") into buf; NULL if none. */
const char *rt_gguf_name(const char *hf_name, char *buf, size_t cap);

#endif
