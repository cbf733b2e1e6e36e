/*
 * test_plan_roles.c - tensor roles from real name lists of each naming
 * family (LLaMA/Mistral/Qwen2/Mixtral, GPT-2, GPT-NeoX/Pythia, BERT, DiT),
 * shape fallbacks, layer indices, depth, tied embeddings, and every tensor
 * of the checkpoints in ../shared/models.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "plan/plan_roles.h"
#include "reader/st_reader.h"
#include "test_support.h"

typedef struct expect {
    const char *name;
    unsigned ndim;
    const char *role;
    int layer;
} expect;

/* Classifies a model's name list, finishes it, checks roles and layers; returns the infos (caller frees). */
static mx_role_info *check_family(const expect *e, size_t n, const char *family)
{
    mx_role_info *r = calloc(n, sizeof *r);
    cr_assert(r);
    for (size_t i = 0; i < n; i++) {
        uint64_t shape[2] = {64, 64};
        mx_role_classify(e[i].name, e[i].ndim, shape, &r[i]);
    }
    mx_roles_finish(r, n);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(mx_role_name(r[i].role), e[i].role, "%s: %s is %s, expected %s", family, e[i].name,
                         mx_role_name(r[i].role), e[i].role);
        cr_expect_eq(r[i].layer, e[i].layer, "%s: %s: layer %d, expected %d", family, e[i].name, r[i].layer,
                     e[i].layer);
        if (strcmp(e[i].role, "other") != 0)
            cr_expect_str_neq(r[i].family, "shape", "%s: %s fell back to shape rules", family, e[i].name);
    }
    return r;
}

static size_t find(const expect *e, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) return i;
    cr_assert_fail("no %s", name);
    return 0;
}

Test(roles, llama_mistral_qwen2)
{
    static const expect e[] = {
        {"model.embed_tokens.weight", 2, "embedding", -1},
        {"model.layers.0.input_layernorm.weight", 1, "norm", 0},
        {"model.layers.0.self_attn.q_proj.weight", 2, "attn_q", 0},
        {"model.layers.0.self_attn.k_proj.weight", 2, "attn_k", 0},
        {"model.layers.0.self_attn.v_proj.weight", 2, "attn_v", 0},
        {"model.layers.0.self_attn.q_proj.bias", 1, "attn_q", 0}, /* Qwen2 */
        {"model.layers.0.self_attn.k_proj.bias", 1, "attn_k", 0},
        {"model.layers.0.self_attn.v_proj.bias", 1, "attn_v", 0},
        {"model.layers.0.self_attn.o_proj.weight", 2, "attn_out", 0},
        {"model.layers.0.post_attention_layernorm.weight", 1, "norm", 0},
        {"model.layers.0.mlp.gate_proj.weight", 2, "mlp_gate", 0},
        {"model.layers.0.mlp.up_proj.weight", 2, "mlp_up", 0},
        {"model.layers.0.mlp.down_proj.weight", 2, "mlp_down", 0},
        {"model.layers.31.self_attn.q_proj.weight", 2, "attn_q", 31},
        {"model.layers.31.mlp.down_proj.weight", 2, "mlp_down", 31},
        {"model.norm.weight", 1, "norm", -1},
        {"lm_head.weight", 2, "output", -1},
    };
    size_t n = sizeof e / sizeof *e;
    mx_role_info *r = check_family(e, n, "llama");
    size_t emb = find(e, n, "model.embed_tokens.weight");
    cr_assert(r[emb].token_embedding);
    cr_assert(!r[emb].tied, "lm_head present: not tied");
    cr_assert_float_eq(r[find(e, n, "model.layers.31.mlp.down_proj.weight")].depth, 1.0, 1e-12);
    cr_assert_float_eq(r[find(e, n, "model.layers.0.mlp.down_proj.weight")].depth, 0.0, 1e-12);
    cr_assert(r[find(e, n, "lm_head.weight")].final_layer);
    cr_assert(r[find(e, n, "model.layers.31.self_attn.q_proj.weight")].final_layer);
    cr_assert(!r[find(e, n, "model.layers.0.self_attn.q_proj.weight")].final_layer);
    free(r);
}

Test(roles, mixtral_experts_and_router)
{
    static const expect e[] = {
        {"model.embed_tokens.weight", 2, "embedding", -1},
        {"model.layers.1.self_attn.q_proj.weight", 2, "attn_q", 1},
        {"model.layers.1.block_sparse_moe.gate.weight", 2, "router", 1},
        {"model.layers.1.block_sparse_moe.experts.0.w1.weight", 2, "mlp_gate", 1},
        {"model.layers.1.block_sparse_moe.experts.0.w2.weight", 2, "mlp_down", 1},
        {"model.layers.1.block_sparse_moe.experts.0.w3.weight", 2, "mlp_up", 1},
        {"model.layers.1.block_sparse_moe.experts.7.w1.weight", 2, "mlp_gate", 1},
        {"model.layers.1.block_sparse_moe.experts.7.w2.weight", 2, "mlp_down", 1},
        {"model.layers.1.block_sparse_moe.experts.7.w3.weight", 2, "mlp_up", 1},
        {"model.layers.2.mlp.gate.weight", 2, "router", 2}, /* Qwen2-MoE */
        {"model.layers.2.mlp.experts.3.gate_proj.weight", 2, "mlp_gate", 2},
        {"model.layers.2.mlp.shared_expert_gate.weight", 2, "router", 2},
        {"lm_head.weight", 2, "output", -1},
    };
    size_t n = sizeof e / sizeof *e;
    mx_role_info *r = check_family(e, n, "mixtral");
    cr_assert_eq(r[find(e, n, "model.layers.1.block_sparse_moe.experts.7.w3.weight")].expert, 7);
    cr_assert_eq(r[find(e, n, "model.layers.1.block_sparse_moe.gate.weight")].expert, -1);
    free(r);
}

Test(roles, gpt2)
{
    static const expect e[] = {
        {"wte.weight", 2, "embedding", -1},
        {"wpe.weight", 2, "embedding", -1},
        {"h.0.ln_1.weight", 1, "norm", 0},
        {"h.0.ln_1.bias", 1, "norm", 0},
        {"h.0.attn.bias", 4, "other", 0}, /* the causal mask buffer */
        {"h.0.attn.c_attn.weight", 2, "attn_qkv", 0},
        {"h.0.attn.c_attn.bias", 1, "attn_qkv", 0},
        {"h.0.attn.c_proj.weight", 2, "attn_out", 0},
        {"h.0.ln_2.weight", 1, "norm", 0},
        {"h.0.mlp.c_fc.weight", 2, "mlp_up", 0},
        {"h.0.mlp.c_proj.weight", 2, "mlp_down", 0},
        {"h.11.mlp.c_proj.weight", 2, "mlp_down", 11},
        {"ln_f.weight", 1, "norm", -1},
    };
    size_t n = sizeof e / sizeof *e;
    mx_role_info *r = check_family(e, n, "gpt2");
    cr_assert(r[find(e, n, "wte.weight")].token_embedding);
    cr_assert(r[find(e, n, "wte.weight")].tied, "GPT-2 has no lm_head: tied");
    cr_assert(!r[find(e, n, "wpe.weight")].token_embedding);
    cr_assert(r[find(e, n, "h.0.attn.bias")].buffer);
    free(r);
    /* the same with the transformer. prefix of GPT2LMHeadModel and an explicit head */
    static const expect f[] = {
        {"transformer.wte.weight", 2, "embedding", -1},
        {"transformer.h.3.attn.c_attn.weight", 2, "attn_qkv", 3},
        {"transformer.h.3.attn.masked_bias", 0, "other", 3},
        {"transformer.ln_f.bias", 1, "norm", -1},
        {"lm_head.weight", 2, "output", -1},
    };
    r = check_family(f, sizeof f / sizeof *f, "gpt2-prefixed");
    cr_assert(!r[0].tied);
    free(r);
}

Test(roles, gpt_neox_pythia)
{
    static const expect e[] = {
        {"gpt_neox.embed_in.weight", 2, "embedding", -1},
        {"gpt_neox.layers.0.input_layernorm.weight", 1, "norm", 0},
        {"gpt_neox.layers.0.post_attention_layernorm.weight", 1, "norm", 0},
        {"gpt_neox.layers.0.attention.bias", 4, "other", 0},
        {"gpt_neox.layers.0.attention.masked_bias", 0, "other", 0},
        {"gpt_neox.layers.0.attention.rotary_emb.inv_freq", 1, "other", 0},
        {"gpt_neox.layers.0.attention.query_key_value.weight", 2, "attn_qkv", 0},
        {"gpt_neox.layers.0.attention.query_key_value.bias", 1, "attn_qkv", 0},
        {"gpt_neox.layers.0.attention.dense.weight", 2, "attn_out", 0},
        {"gpt_neox.layers.0.mlp.dense_h_to_4h.weight", 2, "mlp_up", 0},
        {"gpt_neox.layers.0.mlp.dense_4h_to_h.weight", 2, "mlp_down", 0},
        {"gpt_neox.layers.5.mlp.dense_4h_to_h.bias", 1, "mlp_down", 5},
        {"gpt_neox.final_layer_norm.weight", 1, "norm", -1},
        {"embed_out.weight", 2, "output", -1},
    };
    size_t n = sizeof e / sizeof *e;
    mx_role_info *r = check_family(e, n, "neox");
    cr_assert(!r[find(e, n, "gpt_neox.embed_in.weight")].tied);
    cr_assert(r[find(e, n, "gpt_neox.layers.0.attention.rotary_emb.inv_freq")].buffer);
    cr_assert(r[find(e, n, "gpt_neox.layers.0.attention.bias")].buffer);
    cr_assert(!r[find(e, n, "gpt_neox.layers.0.attention.dense.weight")].buffer);
    cr_assert_float_eq(r[find(e, n, "gpt_neox.layers.5.mlp.dense_4h_to_h.bias")].depth, 1.0, 1e-12);
    free(r);
}

Test(roles, bert)
{
    static const expect e[] = {
        {"bert.embeddings.word_embeddings.weight", 2, "embedding", -1},
        {"bert.embeddings.position_embeddings.weight", 2, "embedding", -1},
        {"bert.embeddings.token_type_embeddings.weight", 2, "embedding", -1},
        {"bert.embeddings.LayerNorm.weight", 1, "norm", -1},
        {"bert.embeddings.LayerNorm.bias", 1, "norm", -1},
        {"bert.embeddings.position_ids", 2, "other", -1},
        {"bert.encoder.layer.0.attention.self.query.weight", 2, "attn_q", 0},
        {"bert.encoder.layer.0.attention.self.key.weight", 2, "attn_k", 0},
        {"bert.encoder.layer.0.attention.self.value.weight", 2, "attn_v", 0},
        {"bert.encoder.layer.0.attention.self.value.bias", 1, "attn_v", 0},
        {"bert.encoder.layer.0.attention.output.dense.weight", 2, "attn_out", 0},
        {"bert.encoder.layer.0.attention.output.LayerNorm.weight", 1, "norm", 0},
        {"bert.encoder.layer.0.intermediate.dense.weight", 2, "mlp_up", 0},
        {"bert.encoder.layer.0.output.dense.weight", 2, "mlp_down", 0},
        {"bert.encoder.layer.0.output.LayerNorm.gamma", 1, "norm", 0},
        {"bert.encoder.layer.11.output.dense.weight", 2, "mlp_down", 11},
        {"bert.pooler.dense.weight", 2, "output", -1},
        {"bert.pooler.dense.bias", 1, "output", -1},
    };
    size_t n = sizeof e / sizeof *e;
    mx_role_info *r = check_family(e, n, "bert");
    cr_assert(r[0].token_embedding);
    cr_assert(!r[0].tied, "BertModel has no masked-LM head to tie");
    cr_assert(!r[1].token_embedding);
    free(r);
    /* BertForMaskedLM stores the head's transform and bias but ties the decoder to the word embeddings */
    static const expect f[] = {
        {"bert.embeddings.word_embeddings.weight", 2, "embedding", -1},
        {"bert.encoder.layer.0.attention.self.query.weight", 2, "attn_q", 0},
        {"cls.predictions.bias", 1, "other", -1},
        {"cls.predictions.transform.dense.weight", 2, "output", -1},
        {"cls.predictions.transform.LayerNorm.weight", 1, "norm", -1},
    };
    r = check_family(f, sizeof f / sizeof *f, "bert-mlm");
    cr_assert(r[0].tied);
    free(r);
}

Test(roles, dit)
{
    static const expect e[] = {
        {"pos_embed", 3, "embedding", -1},
        {"x_embedder.proj.weight", 4, "embedding", -1},
        {"x_embedder.proj.bias", 1, "embedding", -1},
        {"t_embedder.mlp.0.weight", 2, "embedding", -1},
        {"t_embedder.mlp.2.weight", 2, "embedding", -1},
        {"y_embedder.embedding_table.weight", 2, "embedding", -1},
        {"blocks.0.attn.qkv.weight", 2, "attn_qkv", 0},
        {"blocks.0.attn.qkv.bias", 1, "attn_qkv", 0},
        {"blocks.0.attn.proj.weight", 2, "attn_out", 0},
        {"blocks.0.mlp.fc1.weight", 2, "mlp_up", 0},
        {"blocks.0.mlp.fc2.weight", 2, "mlp_down", 0},
        {"blocks.0.adaLN_modulation.1.weight", 2, "modulation", 0},
        {"blocks.27.adaLN_modulation.1.bias", 1, "modulation", 27},
        {"final_layer.adaLN_modulation.1.weight", 2, "modulation", -1},
        {"final_layer.linear.weight", 2, "output", -1},
    };
    size_t n = sizeof e / sizeof *e;
    mx_role_info *r = check_family(e, n, "dit");
    cr_assert(r[find(e, n, "final_layer.linear.weight")].final_layer);
    cr_assert_float_eq(r[find(e, n, "blocks.27.adaLN_modulation.1.bias")].depth, 1.0, 1e-12);
    free(r);
}

Test(roles, fallbacks)
{
    static const expect e[] = {
        {"encoder.stem.conv.weight", 4, "other", -1},
        {"some.unknown.matrix", 2, "other", -1},
        {"scalar_thing", 0, "other", -1},
        {"decoder.final_norm.weight", 1, "norm", -1},
        {"my_classifier_head.weight", 2, "output", -1},
        {"patch_embedding.weight", 2, "embedding", -1},
        {"layers.2.router.weight", 2, "router", 2},
        {"", 1, "other", -1},
        {"...", 1, "other", -1},
        {"layers.99999999999999999999.x", 2, "other", 1000000000},
    };
    mx_role_info *r = check_family(e, sizeof e / sizeof *e, "fallback");
    cr_assert_str_eq(r[0].family, "shape");
    cr_assert_str_eq(r[3].family, "generic");
    free(r);
    mx_role rr;
    for (int k = 0; k < MX_ROLE_COUNT; k++) {
        cr_assert(mx_role_from_name(mx_role_name((mx_role)k), &rr));
        cr_assert_eq(rr, (mx_role)k);
    }
    cr_assert(!mx_role_from_name("bogus", &rr));
    cr_assert_str_eq(mx_role_name(MX_ROLE_COUNT), "other");
}

/* Every tensor of every real checkpoint gets a role from the name tables, with layers 0..L-1. */
Test(roles, shared_models)
{
    char *models = ts_models_dir();
    if (!models) cr_skip_test("../shared/models is absent");
    DIR *d = opendir(models);
    cr_assert(d);
    struct dirent *de;
    int seen = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *in = ts_path(models, de->d_name), *stp = ts_path(in, "model.safetensors");
        struct stat sb;
        int ok = stat(stp, &sb) == 0;
        free(stp);
        if (!ok) {
            free(in);
            continue;
        }
        st_model *m = NULL;
        mixq_error err;
        cr_assert_eq(st_open(in, &m, &err), MIXQ_OK, "%s", err.message);
        mx_role_info *r = calloc(m->ntensors, sizeof *r);
        int max_layer = -1, has_head = 0;
        for (size_t i = 0; i < m->ntensors; i++) {
            const st_tensor *t = &m->tensors[i];
            mx_role_classify(t->name, t->ndim, t->shape, &r[i]);
            cr_assert_str_neq(r[i].family, "shape", "%s: %s has no role", de->d_name, t->name);
            cr_assert_neq(r[i].role, MX_ROLE_OTHER, "%s: %s", de->d_name, t->name);
            if (t->ndim == 1) cr_assert_eq(r[i].role, MX_ROLE_NORM, "%s: %s", de->d_name, t->name);
            if (r[i].layer > max_layer) max_layer = r[i].layer;
            if (r[i].role == MX_ROLE_OUTPUT) has_head = 1;
        }
        mx_roles_finish(r, m->ntensors);
        for (size_t i = 0; i < m->ntensors; i++) {
            if (r[i].token_embedding) cr_assert_eq(r[i].tied, !has_head, "%s: tied", de->d_name);
            cr_assert(r[i].depth >= 0 && r[i].depth <= 1);
        }
        cr_assert_gt(max_layer, 0, "%s: no layers found", de->d_name);
        cr_log_info("%s: %zu tensors, %d blocks, %s", de->d_name, m->ntensors, max_layer + 1,
                    has_head ? "separate head" : "tied embedding");
        free(r);
        st_close(m);
        free(in);
        seen++;
    }
    closedir(d);
    free(models);
    cr_assert_gt(seen, 0);
}
