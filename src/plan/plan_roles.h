/*
 * plan_roles.h - what each tensor of a checkpoint is (embedding, norm,
 * attention projection, ...), found from its name and shape: the planner's
 * prior on how sensitive it is to quantization.
 *
 * Names are matched against a table of naming families (LLaMA / Mistral /
 * Qwen2 / Mixtral, GPT-2, GPT-NeoX / Pythia, BERT, DiT) and then generic
 * keywords; a name no rule knows falls back to shape rules.  See
 * docs/PLANNER.md.
 */
#ifndef MIXQ_PLAN_ROLES_H
#define MIXQ_PLAN_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mx_role {
    MX_ROLE_OTHER = 0,
    MX_ROLE_EMBEDDING,  /* token, position or patch embedding */
    MX_ROLE_NORM,       /* LayerNorm / RMSNorm */
    MX_ROLE_OUTPUT,     /* output head (lm_head, embed_out, pooler, final layer) */
    MX_ROLE_ATTN_Q,
    MX_ROLE_ATTN_K,
    MX_ROLE_ATTN_V,
    MX_ROLE_ATTN_QKV,   /* fused q, k and v */
    MX_ROLE_ATTN_OUT,
    MX_ROLE_MLP_UP,
    MX_ROLE_MLP_GATE,
    MX_ROLE_MLP_DOWN,
    MX_ROLE_ROUTER,     /* mixture-of-experts gate */
    MX_ROLE_MODULATION, /* DiT adaLN modulation */
    MX_ROLE_COUNT
} mx_role;

typedef struct mx_role_info {
    mx_role role;
    const char *family; /* which table matched: "llama", "gpt2", "neox", "bert", "dit", "generic", "shape" */
    int layer;          /* block index, -1 outside the repeated blocks */
    int expert;         /* mixture-of-experts expert index, -1 if none */
    double depth;       /* layer / (layers - 1) in [0, 1]; 0 for embeddings, 1 for the rest outside blocks */
    bool token_embedding; /* the token embedding matrix (the one an output head may be tied to) */
    bool tied;          /* token embedding also used as the output head (no separate head) */
    bool buffer;        /* a non-learned buffer (attention mask, rotary inv_freq): keep source precision */
    bool final_layer;   /* the output head or a tensor of the last block */
    int blocks;         /* blocks of the model (largest layer index + 1; 0 if none) */
    bool vocab_head;    /* a vocabulary head (lm_head, embed_out, MLM decoder) */
    bool mlm_hint;      /* part of a BERT masked-LM head (cls.predictions.*) */
} mx_role_info;

/* Short name of a role ("attn_q", ...); "other" for out-of-range values. */
const char *mx_role_name(mx_role role);

/* Role by name; false if unknown. */
bool mx_role_from_name(const char *name, mx_role *out);

/* Classifies one tensor by name and shape (depth, tied and final_layer are left for mx_roles_finish). */
void mx_role_classify(const char *name, unsigned ndim, const uint64_t *shape, mx_role_info *out);

/*
 * Model-level pass over all tensors' infos: the number of blocks (largest
 * layer index + 1) gives each tensor's depth fraction; a token embedding with
 * no output head in the model is marked tied; final_layer is set.
 */
void mx_roles_finish(mx_role_info *infos, size_t n);

#endif
