/* model.c - config.json of the LLaMA family, weight binding and rt_linear (see model.h). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/path.h"
#include "common/dtype.h"
#include "common/error.h"
#include "container/container_matmul.h"
#include "format/container.h"
#include "kernels/matmul.h"
#include "runtime/model.h"

/* ---------------------------------------------------------------- config */

static mixq_status cfg_int(const char *name, json_t *root, const char *key, int required, int64_t def,
                           int64_t min, int64_t *out, mixq_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return mx_err(err, MIXQ_E_FORMAT, "%s: missing \"%s\"", name, key);
        *out = def;
        return MIXQ_OK;
    }
    if (!json_is_integer(v))
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"%s\" must be an integer", name, key);
    int64_t x = (int64_t)json_integer_value(v);
    if (x < min || x > ((int64_t)1 << 40))
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"%s\" = %lld is out of range", name, key, (long long)x);
    *out = x;
    return MIXQ_OK;
}

static mixq_status cfg_num(const char *name, json_t *obj, const char *key, int required, double def,
                           double *out, mixq_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return mx_err(err, MIXQ_E_FORMAT, "%s: missing \"%s\"", name, key);
        *out = def;
        return MIXQ_OK;
    }
    if (!json_is_number(v)) return mx_err(err, MIXQ_E_FORMAT, "%s: \"%s\" must be a number", name, key);
    double x = json_number_value(v);
    if (!isfinite(x) || x <= 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"%s\" must be a positive number", name, key);
    *out = x;
    return MIXQ_OK;
}

static int cfg_bool(json_t *root, const char *key, int def)
{
    json_t *v = json_object_get(root, key);
    if (!v || !json_is_boolean(v)) return def;
    return json_is_true(v);
}

static mixq_status cfg_rope_scaling(const char *name, json_t *root, rt_config *c, mixq_error *err)
{
    json_t *rs = json_object_get(root, "rope_scaling");
    if (!rs || json_is_null(rs)) return MIXQ_OK;
    if (!json_is_object(rs)) return mx_err(err, MIXQ_E_FORMAT, "%s: \"rope_scaling\" must be an object or null", name);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    if (!json_is_string(t)) return mx_err(err, MIXQ_E_FORMAT, "%s: \"rope_scaling\" has no \"rope_type\"", name);
    const char *type = json_string_value(t);
    if (!strcmp(type, "default")) return MIXQ_OK;
    char b[MX_SHOWN_BUF];
    if (strcmp(type, "llama3"))
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: rope_scaling of type '%s' is not supported for eval/calibrate/run (supported: llama3)",
                      name, mx_shown(type, b));
    mixq_status s;
    c->rope_llama3 = 1;
    if ((s = cfg_num(name, rs, "factor", 1, 0, &c->rope_factor, err)) ||
        (s = cfg_num(name, rs, "low_freq_factor", 1, 0, &c->rope_low_freq_factor, err)) ||
        (s = cfg_num(name, rs, "high_freq_factor", 1, 0, &c->rope_high_freq_factor, err)) ||
        (s = cfg_int(name, rs, "original_max_position_embeddings", 1, 0, 1, &c->rope_orig_max_pos, err)))
        return s;
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return mx_err(err, MIXQ_E_FORMAT, "%s: rope_scaling needs high_freq_factor > low_freq_factor", name);
    return MIXQ_OK;
}

static mixq_status cfg_token_ids(const char *name, json_t *root, rt_config *c, mixq_error *err)
{
    json_t *b = json_object_get(root, "bos_token_id");
    c->bos_id = -1;
    if (json_is_integer(b) && json_integer_value(b) >= 0) c->bos_id = json_integer_value(b);
    else if (b && !json_is_null(b))
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"bos_token_id\" must be a non-negative integer or null", name);
    json_t *e = json_object_get(root, "eos_token_id");
    c->n_eos = 0;
    if (json_is_integer(e) && json_integer_value(e) >= 0) {
        c->eos_ids[c->n_eos++] = json_integer_value(e);
    } else if (json_is_array(e)) {
        size_t i;
        json_t *v;
        json_array_foreach(e, i, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return mx_err(err, MIXQ_E_FORMAT, "%s: \"eos_token_id\" must hold non-negative integers", name);
            if (c->n_eos < RT_MAX_EOS) c->eos_ids[c->n_eos++] = json_integer_value(v);
        }
    } else if (e && !json_is_null(e)) {
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"eos_token_id\" must be an integer, a list or null", name);
    }
    return MIXQ_OK;
}

mixq_status rt_config_parse(const char *name, const char *text, size_t len, rt_config *c, mixq_error *err)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return mx_err(err, MIXQ_E_FORMAT, "%s: not valid JSON (line %d: %s)", name, je.line, je.text);
    mixq_status s = MIXQ_OK;
    char b[MX_SHOWN_BUF];
    if (!json_is_object(root)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: not a JSON object", name);
        goto done;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: missing \"model_type\"", name);
        goto done;
    }
    const char *type = json_string_value(mt);
    if (!strcmp(type, "llama")) c->arch = RT_ARCH_LLAMA;
    else if (!strcmp(type, "mistral")) c->arch = RT_ARCH_MISTRAL;
    else if (!strcmp(type, "qwen2")) c->arch = RT_ARCH_QWEN2;
    else {
        s = mx_err(err, MIXQ_E_UNSUPPORTED,
                   "%s: model_type '%s' is not supported for eval/calibrate/run; supported: llama, mistral, qwen2",
                   name, mx_shown(type, b));
        goto done;
    }
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    if ((s = cfg_int(name, root, "hidden_size", 1, 0, 1, &c->hidden, err)) ||
        (s = cfg_int(name, root, "intermediate_size", 1, 0, 1, &c->intermediate, err)) ||
        (s = cfg_int(name, root, "num_hidden_layers", 1, 0, 1, &c->n_layers, err)) ||
        (s = cfg_int(name, root, "num_attention_heads", 1, 0, 1, &c->n_heads, err)) ||
        (s = cfg_int(name, root, "num_key_value_heads", 0, c->n_heads, 1, &c->n_kv_heads, err)) ||
        (s = cfg_int(name, root, "vocab_size", 1, 0, 1, &c->vocab, err)) ||
        (s = cfg_int(name, root, "max_position_embeddings", 0, 0, 0, &c->max_pos, err)) ||
        (s = cfg_num(name, root, "rms_norm_eps", 0, 1e-6, &c->norm_eps, err)) ||
        (s = cfg_num(name, root, "rope_theta", 0, 10000.0, &c->rope_theta, err)))
        goto done;
    if (c->hidden % c->n_heads) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: hidden_size %lld is not a multiple of num_attention_heads %lld", name,
                   (long long)c->hidden, (long long)c->n_heads);
        goto done;
    }
    if ((s = cfg_int(name, root, "head_dim", 0, c->hidden / c->n_heads, 2, &c->head_dim, err))) goto done;
    if (c->head_dim % 2) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: head_dim %lld is odd (RoPE needs pairs)", name, (long long)c->head_dim);
        goto done;
    }
    if (c->n_heads % c->n_kv_heads) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                   name, (long long)c->n_heads, (long long)c->n_kv_heads);
        goto done;
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !(json_is_string(act) && !strcmp(json_string_value(act), "silu"))) {
        s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: hidden_act must be \"silu\"", name);
        goto done;
    }
    if (cfg_bool(root, "mlp_bias", 0)) {
        s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: mlp_bias is not supported for eval/calibrate/run", name);
        goto done;
    }
    if (c->arch == RT_ARCH_QWEN2) {
        c->qkv_bias = 1;
    } else if (cfg_bool(root, "attention_bias", 0)) {
        c->qkv_bias = c->o_bias = 1;
    }
    c->tie_embeddings = cfg_bool(root, "tie_word_embeddings", 0);
    int64_t sw = 0;
    int sliding = c->arch == RT_ARCH_MISTRAL || (c->arch == RT_ARCH_QWEN2 && cfg_bool(root, "use_sliding_window", 0));
    /* absent: the transformers default of 4096; null: no window */
    json_t *swv = json_object_get(root, "sliding_window");
    if (sliding && !(swv && json_is_null(swv)) && (s = cfg_int(name, root, "sliding_window", 0, 4096, 0, &sw, err)))
        goto done;
    c->sliding_window = sw;
    if ((s = cfg_rope_scaling(name, root, c, err))) goto done;
    s = cfg_token_ids(name, root, c, err);
done:
    json_decref(root);
    return s;
}

mixq_status rt_read_file(const char *path, size_t max, char **out, size_t *len, mixq_error *err)
{
    char b[MX_SHOWN_BUF];
    FILE *f = fopen(path, "rb");
    if (!f) return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", mx_shown(path, b), strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap > max) {
            fclose(f);
            free(buf);
            return mx_err(err, MIXQ_E_FORMAT, "%s: larger than %zu bytes", mx_shown(path, b), max);
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
    if (bad) {
        free(buf);
        return mx_err(err, MIXQ_E_IO, "%s: read error", mx_shown(path, b));
    }
    *out = buf;
    *len = n;
    return MIXQ_OK;
}

mixq_status rt_config_load(const char *path, rt_config *out, mixq_error *err)
{
    char *text = NULL;
    size_t len = 0;
    mixq_status s = rt_read_file(path, 64u << 20, &text, &len, err);
    if (s) return s;
    char b[MX_SHOWN_BUF];
    s = rt_config_parse(mx_shown(path, b), text, len, out, err);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- binding */

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}


static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return str_dup(".");
    if (slash == path) return str_dup("/");
    char *d = malloc((size_t)(slash - path) + 1);
    if (!d) return NULL;
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = 0;
    return d;
}

static int is_container(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[MXC_MAGIC_LEN];
    int ok = fread(m, 1, sizeof m, f) == sizeof m && !memcmp(m, MXC_MAGIC, MXC_MAGIC_LEN);
    fclose(f);
    return ok;
}

/* Shape of a found tensor. */
typedef struct found {
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    const mixq_tensor *mt;
    const st_tensor *st;
} found;

static int find_tensor(const rt_model *m, const char *name, found *f)
{
    memset(f, 0, sizeof *f);
    if (m->mf) {
        f->mt = mixq_find(m->mf, name);
        if (!f->mt) return 0;
        mixq_tensor_info info;
        mixq_tensor_get_info(f->mt, &info);
        f->ndim = info.ndim;
        memcpy(f->shape, info.shape, sizeof f->shape);
    } else {
        f->st = st_find(m->sm, name);
        if (!f->st) return 0;
        f->ndim = f->st->ndim;
        memcpy(f->shape, f->st->shape, sizeof f->shape);
    }
    return 1;
}

static void shape_str(unsigned ndim, const uint64_t *shape, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (unsigned i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Finds `name` and checks it has shape [d0] (d1 == 0) or [d0, d1]. */
static mixq_status expect(const rt_model *m, const char *name, uint64_t d0, uint64_t d1, found *f, mixq_error *err)
{
    char b1[MX_SHOWN_BUF], b2[MX_SHOWN_BUF];
    if (!find_tensor(m, name, f))
        return mx_err(err, MIXQ_E_FORMAT, "%s: no tensor '%s', which %s implies", mx_shown(m->path, b1), name,
                      mx_shown(m->config_path, b2));
    uint64_t want[2] = {d0, d1};
    unsigned wnd = d1 ? 2 : 1;
    int ok = f->ndim == wnd && f->shape[0] == d0 && (wnd == 1 || f->shape[1] == d1);
    if (!ok) {
        char e[64], g[200];
        shape_str(wnd, want, e, sizeof e);
        shape_str(f->ndim, f->shape, g, sizeof g);
        return mx_err(err, MIXQ_E_FORMAT, "%s disagrees with %s: tensor '%s' has shape %s, expected %s",
                      mx_shown(m->config_path, b2), mx_shown(m->path, b1), name, g, e);
    }
    return MIXQ_OK;
}

static mixq_status bind_weight(const rt_model *m, const char *name, uint64_t rows, uint64_t cols, rt_weight *w,
                               mixq_error *err)
{
    found f;
    mixq_status s = expect(m, name, rows, cols, &f, err);
    if (s) return s;
    memset(w, 0, sizeof *w);
    w->rows = rows;
    w->cols = cols;
    if (m->mf) {
        w->mf = m->mf;
        w->mt = f.mt;
        mixq_tensor_info info;
        mixq_tensor_get_info(f.mt, &info);
        w->name = info.name;
        return mx_container_matmul_layout(f.mt, &w->qt, &w->lay, &w->base, err);
    }
    w->sm = m->sm;
    w->st = f.st;
    w->name = f.st->name;
    const qtype_desc *qt = qtype_for_plain_dtype(f.st->dtype);
    if (qt->id != MIXQ_QT_RAW && qtype_layout(qt, f.st->dtype, rows, cols, 0, &w->lay)) {
        w->qt = qt;
        w->base = (const uint8_t *)f.st->data;
    }
    return MIXQ_OK;
}

/* A 1-D tensor of n values as f32 (norm weights, biases: small, copied). */
static mixq_status bind_vector(const rt_model *m, const char *name, uint64_t n, float **out, mixq_error *err)
{
    rt_weight w;
    found f;
    mixq_status s = expect(m, name, n, 0, &f, err);
    if (s) return s;
    memset(&w, 0, sizeof w);
    w.rows = 1;
    w.cols = n;
    w.mf = m->mf;
    w.mt = f.mt;
    w.sm = m->sm;
    w.st = f.st;
    w.name = name;
    float *v = malloc(n * sizeof *v);
    if (!v) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if ((s = rt_weight_rows(&w, 0, 1, v, err))) {
        free(v);
        return s;
    }
    *out = v;
    return MIXQ_OK;
}

static mixq_status bind_all(rt_model *m, mixq_error *err)
{
    const rt_config *c = &m->cfg;
    uint64_t H = (uint64_t)c->hidden, I = (uint64_t)c->intermediate, V = (uint64_t)c->vocab;
    uint64_t qd = (uint64_t)(c->n_heads * c->head_dim), kvd = (uint64_t)(c->n_kv_heads * c->head_dim);
    mixq_status s;
    if ((s = bind_weight(m, "model.embed_tokens.weight", V, H, &m->embed, err))) return s;
    if ((s = bind_vector(m, "model.norm.weight", H, &m->final_norm, err))) return s;
    found f;
    if (c->tie_embeddings) {
        m->lm_head = m->embed;
    } else if (find_tensor(m, "lm_head.weight", &f)) {
        if ((s = bind_weight(m, "lm_head.weight", V, H, &m->lm_head, err))) return s;
    } else {
        char b1[MX_SHOWN_BUF], b2[MX_SHOWN_BUF];
        return mx_err(err, MIXQ_E_FORMAT, "%s: no tensor 'lm_head.weight' and %s says tie_word_embeddings is false",
                      mx_shown(m->path, b1), mx_shown(m->config_path, b2));
    }
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (int64_t l = 0; l < c->n_layers; l++) {
        rt_layer *L = &m->layers[l];
        char n[128];
#define NAME(suffix) (snprintf(n, sizeof n, "model.layers.%lld.%s", (long long)l, suffix), n)
        if ((s = bind_vector(m, NAME("input_layernorm.weight"), H, &L->attn_norm, err)) ||
            (s = bind_vector(m, NAME("post_attention_layernorm.weight"), H, &L->ffn_norm, err)) ||
            (s = bind_weight(m, NAME("self_attn.q_proj.weight"), qd, H, &L->wq, err)) ||
            (s = bind_weight(m, NAME("self_attn.k_proj.weight"), kvd, H, &L->wk, err)) ||
            (s = bind_weight(m, NAME("self_attn.v_proj.weight"), kvd, H, &L->wv, err)) ||
            (s = bind_weight(m, NAME("self_attn.o_proj.weight"), H, qd, &L->wo, err)) ||
            (s = bind_weight(m, NAME("mlp.gate_proj.weight"), I, H, &L->w_gate, err)) ||
            (s = bind_weight(m, NAME("mlp.up_proj.weight"), I, H, &L->w_up, err)) ||
            (s = bind_weight(m, NAME("mlp.down_proj.weight"), H, I, &L->w_down, err)))
            return s;
        if (c->qkv_bias &&
            ((s = bind_vector(m, NAME("self_attn.q_proj.bias"), qd, &L->bq, err)) ||
             (s = bind_vector(m, NAME("self_attn.k_proj.bias"), kvd, &L->bk, err)) ||
             (s = bind_vector(m, NAME("self_attn.v_proj.bias"), kvd, &L->bv, err))))
            return s;
        if (c->o_bias && (s = bind_vector(m, NAME("self_attn.o_proj.bias"), H, &L->bo, err))) return s;
#undef NAME
    }
    return MIXQ_OK;
}

/*
 * Parses the config.json stored in m's container; MIXQ_E_NOT_FOUND (no
 * message) if it stores none.  m->config_path becomes "CONTAINER:config.json".
 */
static mixq_status config_from_container(rt_model *m, mixq_error *err)
{
    if (mixq_file_find(m->mf, "config.json", NULL) != MIXQ_OK) return MIXQ_E_NOT_FOUND;
    void *text = NULL;
    size_t len = 0;
    mixq_status s = mixq_file_read(m->mf, "config.json", &text, &len, err);
    if (s) return s;
    size_t n = strlen(m->path);
    m->config_path = malloc(n + sizeof ":config.json");
    if (!m->config_path) {
        mixq_free(text);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    memcpy(m->config_path, m->path, n);
    memcpy(m->config_path + n, ":config.json", sizeof ":config.json");
    char b[MX_SHOWN_BUF];
    s = rt_config_parse(mx_shown(m->config_path, b), text, len, &m->cfg, err);
    mixq_free(text);
    if (s == MIXQ_OK) m->config_stored = 1;
    return s;
}

mixq_status rt_model_open(const char *path, const char *config_dir, rt_model **out, mixq_error *err)
{
    *out = NULL;
    rt_model *m = calloc(1, sizeof *m);
    if (!m) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    mixq_status s = MIXQ_OK;
    m->path = str_dup(path);
    if (!m->path) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto fail;
    }
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (is_container(path)) {
        m->mf = mixq_open(path, 0, err);
        if (!m->mf) {
            s = err ? err->code : MIXQ_E_FORMAT;
            goto fail;
        }
    } else if ((s = st_open(path, &m->sm, err))) {
        goto fail;
    }
    if (m->mf && !config_dir && (s = config_from_container(m, err)) != MIXQ_E_NOT_FOUND) {
        if (s) goto fail; /* the container's own config.json (FORMAT.md §3.3) */
    } else {
        char *dir = config_dir ? str_dup(config_dir) : is_dir ? str_dup(path) : dir_of(path);
        m->config_path = dir ? mx_path_join(dir, "config.json") : NULL;
        free(dir);
        if (!m->config_path) {
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            goto fail;
        }
        if ((s = rt_config_load(m->config_path, &m->cfg, err))) goto fail;
    }
    if ((s = bind_all(m, err))) goto fail;
    *out = m;
    return MIXQ_OK;
fail:
    rt_model_close(m);
    return s;
}

void rt_model_close(rt_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int64_t l = 0; l < m->cfg.n_layers; l++) {
            rt_layer *L = &m->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bq);
            free(L->bk);
            free(L->bv);
            free(L->bo);
        }
        free(m->layers);
    }
    free(m->final_norm);
    mixq_close(m->mf);
    st_close(m->sm);
    free(m->path);
    free(m->config_path);
    free(m);
}

/* ---------------------------------------------------------------- compute */

/* Points w at values (or back at its stored bytes for NULL); 1 if w is bound to `name`. */
static int substitute_one(rt_weight *w, const char *name, const float *values)
{
    if (!w->name || strcmp(w->name, name)) return 0;
    w->subst = values;
    w->subst_qt = NULL;
    if (values) {
        const qtype_desc *qt = qtype_for_plain_dtype(ST_F32);
        if (qtype_layout(qt, ST_F32, w->rows, w->cols, 0, &w->subst_lay)) w->subst_qt = qt;
    }
    return 1;
}

int rt_model_substitute(rt_model *m, const char *name, const float *values)
{
    int n = substitute_one(&m->embed, name, values) + substitute_one(&m->lm_head, name, values);
    for (int64_t l = 0; m->layers && l < m->cfg.n_layers; l++) {
        rt_layer *L = &m->layers[l];
        rt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t k = 0; k < sizeof ws / sizeof *ws; k++) n += substitute_one(ws[k], name, values);
    }
    return n;
}

mixq_status rt_weight_rows(const rt_weight *w, uint64_t r0, uint64_t r1, float *out, mixq_error *err)
{
    if (r0 > r1 || r1 > w->rows) return mx_err(err, MIXQ_E_RANGE, "%s: rows [%llu, %llu) out of range", w->name,
                                               (unsigned long long)r0, (unsigned long long)r1);
    if (w->subst) {
        memcpy(out, w->subst + r0 * w->cols, (size_t)((r1 - r0) * w->cols) * sizeof *out);
        return MIXQ_OK;
    }
    if (w->mt) return mixq_dequantize_f32(w->mf, w->mt, r0, r1, out, err);
    size_t es = st_dtypes[w->st->dtype].size;
    st_to_f32(w->st->dtype, w->st->data + r0 * w->cols * es, (size_t)((r1 - r0) * w->cols), out);
    return MIXQ_OK;
}

/* Sum of a[i]*b[i] with eight partial sums (a fixed order: deterministic). */
static float dot(const float *a, const float *b, size_t n)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += a[i + k] * b[i + k];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

typedef struct linear_job {
    const rt_weight *w;
    const float *x;
    float *y;
    size_t n_tokens;
    uint64_t rows_per_block;
    atomic_int failed;
    mixq_error err;
} linear_job;

static void linear_block(void *ctx, size_t bi)
{
    linear_job *j = ctx;
    const rt_weight *w = j->w;
    uint64_t r0 = bi * j->rows_per_block, r1 = r0 + j->rows_per_block;
    if (r1 > w->rows) r1 = w->rows;
    size_t cols = (size_t)w->cols;
    float *scratch = malloc((size_t)(r1 - r0) * cols * sizeof *scratch);
    mixq_error e;
    mixq_status s = scratch ? rt_weight_rows(w, r0, r1, scratch, &e) : mx_err(&e, MIXQ_E_NOMEM, "out of memory");
    if (s) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&j->failed, &expected, 1)) j->err = e;
        free(scratch);
        return;
    }
    for (size_t t = 0; t < j->n_tokens; t++) {
        const float *xt = j->x + t * cols;
        float *yt = j->y + t * w->rows;
        for (uint64_t r = r0; r < r1; r++) yt[r] = dot(scratch + (r - r0) * cols, xt, cols);
    }
    free(scratch);
}

mixq_status rt_linear(const rt_weight *w, const float *x, size_t n_tokens, float *y, mx_pool *pool, mixq_error *err)
{
    if (w->rows == 0 || n_tokens == 0) return MIXQ_OK;
    if (w->subst && w->subst_qt) {
        mx_matmul(NULL, w->subst_qt, &w->subst_lay, (const uint8_t *)w->subst, x, n_tokens, (size_t)w->cols, y,
                  (size_t)w->rows, pool);
        return MIXQ_OK;
    }
    if (w->qt && !w->subst) {
        mx_matmul(NULL, w->qt, &w->lay, w->base, x, n_tokens, (size_t)w->cols, y, (size_t)w->rows, pool);
        return MIXQ_OK;
    }
    /* Blocks of about 128 KB of f32 rows, and at least 4 per thread when the matrix allows. */
    uint64_t rb = (32768 + w->cols - 1) / w->cols;
    unsigned threads = pool ? mx_pool_threads(pool) : 1;
    uint64_t per_thread = (w->rows + 4 * threads - 1) / (4 * threads);
    if (rb > per_thread) rb = per_thread;
    if (rb < 1) rb = 1;
    linear_job j = {.w = w, .x = x, .y = y, .n_tokens = n_tokens, .rows_per_block = rb};
    atomic_init(&j.failed, 0);
    mx_pool_run(pool, (size_t)((w->rows + rb - 1) / rb), linear_block, &j);
    if (atomic_load(&j.failed)) {
        if (err) *err = j.err;
        return j.err.code;
    }
    return MIXQ_OK;
}

const char *rt_gguf_name(const char *hf, char *buf, size_t cap)
{
    static const struct { const char *hf, *gguf; } map[] = {
        {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.o_proj.weight", "attn_output.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},    {"input_layernorm.weight", "attn_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},       {"self_attn.o_proj.bias", "attn_output.bias"},
    };
    if (!strcmp(hf, "lm_head.weight")) return snprintf(buf, cap, "output.weight") < (int)cap ? buf : NULL;
    if (!strcmp(hf, "model.embed_tokens.weight")) return snprintf(buf, cap, "token_embd.weight") < (int)cap ? buf : NULL;
    if (!strcmp(hf, "model.norm.weight")) return snprintf(buf, cap, "output_norm.weight") < (int)cap ? buf : NULL;
    unsigned layer;
    int used = 0;
    if (sscanf(hf, "model.layers.%u.%n", &layer, &used) == 1 && used > 0) {
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(hf + used, map[i].hf))
                return snprintf(buf, cap, "blk.%u.%s", layer, map[i].gguf) < (int)cap ? buf : NULL;
    }
    return NULL;
}
