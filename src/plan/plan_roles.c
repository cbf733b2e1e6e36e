/*
 * plan_roles.c - tensor roles from names and shapes (plan_roles.h).
 *
 * A name is split at dots; a component made only of digits becomes "#" (the
 * first one after a block container such as "layers" or "h" is the layer
 * index, the one after "experts" the expert index), and a final parameter
 * component ("weight", "bias", "gamma", "beta", "scale") is dropped, giving
 * the module path, e.g. "model.layers.#.self_attn.q_proj".  The rules below
 * are fnmatch patterns (case-insensitive) tried in order against every
 * suffix of the module path that starts at a component boundary; the first
 * rule that matches wins.  Rules marked FULL are matched against the whole
 * name instead (buffers such as "attn.bias" whose last component is the
 * point).  A name no rule matches gets a role from its shape.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_roles.h"

static const char *const role_names[MX_ROLE_COUNT] = {
    [MX_ROLE_OTHER] = "other",       [MX_ROLE_EMBEDDING] = "embedding", [MX_ROLE_NORM] = "norm",
    [MX_ROLE_OUTPUT] = "output",     [MX_ROLE_ATTN_Q] = "attn_q",       [MX_ROLE_ATTN_K] = "attn_k",
    [MX_ROLE_ATTN_V] = "attn_v",     [MX_ROLE_ATTN_QKV] = "attn_qkv",   [MX_ROLE_ATTN_OUT] = "attn_out",
    [MX_ROLE_MLP_UP] = "mlp_up",     [MX_ROLE_MLP_GATE] = "mlp_gate",   [MX_ROLE_MLP_DOWN] = "mlp_down",
    [MX_ROLE_ROUTER] = "router",     [MX_ROLE_MODULATION] = "modulation",
};

const char *mx_role_name(mx_role role)
{
    return (unsigned)role < MX_ROLE_COUNT ? role_names[role] : "other";
}

bool mx_role_from_name(const char *name, mx_role *out)
{
    if (!name) return false;
    for (int r = 0; r < MX_ROLE_COUNT; r++)
        if (!strcmp(name, role_names[r])) {
            *out = (mx_role)r;
            return true;
        }
    return false;
}

enum {
    R_TOKEN = 1,  /* the token embedding */
    R_BUFFER = 2, /* a non-learned buffer: keep source precision */
    R_FULL = 4,   /* match against the whole name (with its parameter component) */
    R_HEAD = 8    /* a vocabulary head (an embedding may be tied to it) */
};

typedef struct role_rule {
    const char *family;
    const char *pattern;
    mx_role role;
    unsigned flags;
} role_rule;

/* First match wins: specific rules before general ones. */
static const role_rule rules[] = {
    /* buffers stored in some checkpoints */
    {"gpt2", "attn.bias", MX_ROLE_OTHER, R_BUFFER | R_FULL},
    {"gpt2", "attn.masked_bias", MX_ROLE_OTHER, R_BUFFER | R_FULL},
    {"neox", "attention.bias", MX_ROLE_OTHER, R_BUFFER | R_FULL},
    {"neox", "attention.masked_bias", MX_ROLE_OTHER, R_BUFFER | R_FULL},
    {"generic", "rotary_emb.inv_freq", MX_ROLE_OTHER, R_BUFFER | R_FULL},
    {"generic", "inv_freq", MX_ROLE_OTHER, R_BUFFER | R_FULL},
    {"bert", "embeddings.position_ids", MX_ROLE_OTHER, R_BUFFER | R_FULL},

    /* LLaMA / Mistral / Qwen2 / Mixtral */
    {"llama", "embed_tokens", MX_ROLE_EMBEDDING, R_TOKEN},
    {"llama", "q_proj", MX_ROLE_ATTN_Q, 0},
    {"llama", "k_proj", MX_ROLE_ATTN_K, 0},
    {"llama", "v_proj", MX_ROLE_ATTN_V, 0},
    {"llama", "o_proj", MX_ROLE_ATTN_OUT, 0},
    {"llama", "gate_proj", MX_ROLE_MLP_GATE, 0},
    {"llama", "gate_up_proj", MX_ROLE_MLP_UP, 0}, /* fused gate and up (Llama 4, Phi-3, MoE experts) */
    {"llama", "up_proj", MX_ROLE_MLP_UP, 0},
    {"llama", "down_proj", MX_ROLE_MLP_DOWN, 0},
    {"llama", "input_layernorm", MX_ROLE_NORM, 0},
    {"llama", "post_attention_layernorm", MX_ROLE_NORM, 0},
    {"llama", "model.norm", MX_ROLE_NORM, 0},
    {"llama", "lm_head", MX_ROLE_OUTPUT, R_HEAD},
    {"llama", "block_sparse_moe.experts.#.w1", MX_ROLE_MLP_GATE, 0},
    {"llama", "block_sparse_moe.experts.#.w3", MX_ROLE_MLP_UP, 0},
    {"llama", "block_sparse_moe.experts.#.w2", MX_ROLE_MLP_DOWN, 0},
    {"llama", "block_sparse_moe.gate", MX_ROLE_ROUTER, 0},
    {"llama", "mlp.gate", MX_ROLE_ROUTER, 0},              /* Qwen2-MoE */
    {"llama", "mlp.shared_expert_gate", MX_ROLE_ROUTER, 0}, /* Qwen2-MoE */

    /* GPT-2 */
    {"gpt2", "wte", MX_ROLE_EMBEDDING, R_TOKEN},
    {"gpt2", "wpe", MX_ROLE_EMBEDDING, 0},
    {"gpt2", "attn.c_attn", MX_ROLE_ATTN_QKV, 0},
    {"gpt2", "attn.c_proj", MX_ROLE_ATTN_OUT, 0},
    {"gpt2", "mlp.c_fc", MX_ROLE_MLP_UP, 0},
    {"gpt2", "mlp.c_proj", MX_ROLE_MLP_DOWN, 0},
    {"gpt2", "ln_1", MX_ROLE_NORM, 0},
    {"gpt2", "ln_2", MX_ROLE_NORM, 0},
    {"gpt2", "ln_f", MX_ROLE_NORM, 0},

    /* GPT-NeoX / Pythia */
    {"neox", "embed_in", MX_ROLE_EMBEDDING, R_TOKEN},
    {"neox", "attention.query_key_value", MX_ROLE_ATTN_QKV, 0},
    {"neox", "attention.dense", MX_ROLE_ATTN_OUT, 0},
    {"neox", "mlp.dense_h_to_4h", MX_ROLE_MLP_UP, 0},
    {"neox", "mlp.dense_4h_to_h", MX_ROLE_MLP_DOWN, 0},
    {"neox", "embed_out", MX_ROLE_OUTPUT, R_HEAD},
    {"neox", "final_layer_norm", MX_ROLE_NORM, 0},

    /* BERT */
    {"bert", "embeddings.word_embeddings", MX_ROLE_EMBEDDING, R_TOKEN},
    {"bert", "embeddings.position_embeddings", MX_ROLE_EMBEDDING, 0},
    {"bert", "embeddings.token_type_embeddings", MX_ROLE_EMBEDDING, 0},
    {"bert", "attention.self.query", MX_ROLE_ATTN_Q, 0},
    {"bert", "attention.self.key", MX_ROLE_ATTN_K, 0},
    {"bert", "attention.self.value", MX_ROLE_ATTN_V, 0},
    {"bert", "attention.output.dense", MX_ROLE_ATTN_OUT, 0},
    {"bert", "attention.output.LayerNorm", MX_ROLE_NORM, 0},
    {"bert", "intermediate.dense", MX_ROLE_MLP_UP, 0},
    {"bert", "output.dense", MX_ROLE_MLP_DOWN, 0},
    {"bert", "LayerNorm", MX_ROLE_NORM, 0},
    {"bert", "pooler.dense", MX_ROLE_OUTPUT, 0},
    {"bert", "cls.predictions.decoder", MX_ROLE_OUTPUT, R_HEAD},
    {"bert", "cls.predictions.transform.dense", MX_ROLE_OUTPUT, 0},
    {"bert", "cls.seq_relationship", MX_ROLE_OUTPUT, 0},

    /* DiT */
    {"dit", "x_embedder.proj", MX_ROLE_EMBEDDING, 0},
    {"dit", "t_embedder.mlp.#", MX_ROLE_EMBEDDING, 0},
    {"dit", "y_embedder.embedding_table", MX_ROLE_EMBEDDING, 0},
    {"dit", "pos_embed", MX_ROLE_EMBEDDING, 0},
    {"dit", "attn.qkv", MX_ROLE_ATTN_QKV, 0},
    {"dit", "attn.proj", MX_ROLE_ATTN_OUT, 0},
    {"dit", "mlp.fc1", MX_ROLE_MLP_UP, 0},
    {"dit", "mlp.fc2", MX_ROLE_MLP_DOWN, 0},
    {"dit", "adaLN_modulation.#", MX_ROLE_MODULATION, 0},
    {"dit", "final_layer.linear", MX_ROLE_OUTPUT, 0},

    /* generic keywords */
    {"generic", "*norm*", MX_ROLE_NORM, 0},
    {"generic", "*router*", MX_ROLE_ROUTER, 0},
    {"generic", "*embed*", MX_ROLE_EMBEDDING, 0},
    {"generic", "*head*", MX_ROLE_OUTPUT, R_HEAD},
};

/* Components after which a number is the block (layer) index. */
static const char *const block_containers[] = {"layers", "layer", "h", "blocks", "block",
                                               "transformer_blocks", "single_transformer_blocks"};

/* Final components naming a parameter of a module rather than the module. */
static const char *const param_components[] = {"weight", "bias", "gamma", "beta", "scale"};

static bool in_list(const char *s, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && !memcmp(s, list[i], len)) return true;
    return false;
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* Parses a short run of digits (saturating at 1e9). */
static int small_number(const char *s, size_t len)
{
    long v = 0;
    for (size_t i = 0; i < len && v < 1000000000L; i++) v = v * 10 + (s[i] - '0');
    return (int)(v > 1000000000L ? 1000000000L : v);
}

/* True if pattern matches s or a suffix of s that starts after a '.'. */
static bool match_suffix(const char *pattern, const char *s)
{
    for (const char *p = s;;) {
        if (fnmatch(pattern, p, FNM_CASEFOLD) == 0) return true;
        p = strchr(p, '.');
        if (!p) return false;
        p++;
    }
}

void mx_role_classify(const char *name, unsigned ndim, const uint64_t *shape, mx_role_info *out)
{
    (void)shape;
    memset(out, 0, sizeof *out);
    out->role = MX_ROLE_OTHER;
    out->family = "shape";
    out->layer = -1;
    out->expert = -1;
    if (!name) return;

    /* normalize: digits -> '#', note layer and expert indices, find the module path */
    size_t len = strlen(name);
    char *full = malloc(len + 1);
    if (!full) return;
    size_t o = 0, module_end = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && name[j] != '.') j++;
        const char *comp = name + i;
        size_t clen = j - i;
        if (o) full[o++] = '.';
        if (all_digits(comp, clen)) {
            int v = small_number(comp, clen);
            if (prev && out->layer < 0 &&
                in_list(prev, prev_len, block_containers, sizeof block_containers / sizeof *block_containers))
                out->layer = v;
            if (prev && prev_len == 7 && !memcmp(prev, "experts", 7) && out->expert < 0) out->expert = v;
            full[o++] = '#';
        } else {
            memcpy(full + o, comp, clen);
            o += clen;
        }
        if (j >= len) {
            bool param = in_list(comp, clen, param_components, sizeof param_components / sizeof *param_components);
            module_end = param && o > clen ? o - clen - 1 : o;
            if (param && o == clen) module_end = o; /* a bare "weight" stays as is */
        }
        prev = comp;
        prev_len = clen;
        i = j + 1;
    }
    full[o] = '\0';
    char *module = strndup(full, module_end);
    if (!module) {
        free(full);
        return;
    }

    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        const role_rule *rl = &rules[r];
        if (!match_suffix(rl->pattern, (rl->flags & R_FULL) ? full : module)) continue;
        out->role = rl->role;
        out->family = rl->family;
        out->token_embedding = (rl->flags & R_TOKEN) != 0 && ndim >= 2;
        out->buffer = (rl->flags & R_BUFFER) != 0;
        out->vocab_head = (rl->flags & R_HEAD) != 0;
        break;
    }
    out->mlm_hint = match_suffix("cls.predictions*", module);
    /* shape rules: 0-D and 1-D tensors stay "other" (kept at source precision by default) */
    free(module);
    free(full);
}

void mx_roles_finish(mx_role_info *infos, size_t n)
{
    int max_layer = -1;
    bool has_head = false, mlm = false, bert = false;
    for (size_t i = 0; i < n; i++) {
        if (infos[i].layer > max_layer) max_layer = infos[i].layer;
        if (infos[i].vocab_head) has_head = true;
        if (infos[i].mlm_hint) mlm = true;
        if (infos[i].token_embedding && infos[i].family && !strcmp(infos[i].family, "bert")) bert = true;
    }
    for (size_t i = 0; i < n; i++) {
        mx_role_info *r = &infos[i];
        if (r->layer >= 0)
            r->depth = max_layer > 0 ? (double)r->layer / (double)max_layer : 0.0;
        else
            r->depth = r->role == MX_ROLE_EMBEDDING ? 0.0 : 1.0;
        r->final_layer = r->role == MX_ROLE_OUTPUT || (r->layer >= 0 && r->layer == max_layer);
        r->blocks = max_layer + 1;
        /* a BERT encoder without a masked-LM head has no head to tie */
        if (r->token_embedding) r->tied = !has_head && (!bert || mlm);
    }
}
