/*
 * test_measure.c - `mixq measure` and the planner's --measurement: the
 * measurement file (round trip, strict parsing, resume after a partial run,
 * settings and model mismatches), that a measured KLD is the KLD of the
 * converter's container with that one tensor quantized, determinism across
 * thread counts, measured weights and predicted KLD in plans (more bytes,
 * lower prediction), plan files, container headers and the CLI displays.
 * On a generated LLaMA checkpoint; a real model (../shared/models) is used
 * where present.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mixq_tools.h"
#include "plan/plan.h"
#include "plan/plan_measurement.h"
#include "runtime/eval.h"
#include "runtime/measure.h"
#include "runtime/model.h"
#include "test_support.h"

static void fini(void) { ts_remove_tracked(); }
TestSuite(measure, .fini = fini);

static int one_line(const char *s) { return s && *s && !strchr(s, '\n'); }

static const char cfg[] =
    "{\"model_type\": \"llama\", \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 48, \"tie_word_embeddings\": true,"
    " \"bos_token_id\": 1, \"eos_token_id\": 2, \"max_position_embeddings\": 64}";

/* The generated model in a fresh directory; *ckpt gets its model.safetensors. */
static char *make_model(char **ckpt)
{
    char *dir = ts_tmpdir_tracked();
    ts_write_llama(dir, 32, 64, 2, 4, 2, 48, cfg);
    *ckpt = ts_path(dir, "model.safetensors");
    return dir;
}

/* 3 chunks of 16 tokens (and some). */
static int32_t *make_tokens(size_t *n)
{
    *n = 60;
    int32_t *t = malloc(*n * sizeof *t);
    for (size_t i = 0; i < *n; i++) t[i] = (int32_t)((i * 7 + i / 5) % 48);
    return t;
}

/* rt_measure_options.max_base_bytes of the next measure_to (0: the default) */
static size_t base_cap;

static mixq_status measure_to(const char *dir, const char *out, size_t max_tensors, unsigned threads,
                              const char *ref, size_t chunks, rt_measure_result *r, mixq_error *err)
{
    rt_model *m = NULL;
    mixq_status s = rt_model_open(dir, NULL, &m, err);
    cr_assert_eq(s, MIXQ_OK, "%s", err->message);
    size_t n;
    int32_t *tok = make_tokens(&n);
    mx_pool *pool = threads > 1 ? mx_pool_create(threads) : NULL;
    rt_measure_options o = {.ctx = 16, .max_chunks = chunks, .reference = ref, .out_path = out,
                            .max_tensors = max_tensors, .pool = pool, .max_base_bytes = base_cap};
    s = rt_measure(m, tok, n, &o, r, err);
    mx_pool_destroy(pool);
    free(tok);
    rt_model_close(m);
    return s;
}

static mx_measurement *read_meas(const char *path)
{
    mx_measurement *ms = NULL;
    mixq_error err;
    cr_assert_eq(mx_measurement_read(path, &ms, &err), MIXQ_OK, "%s", err.message);
    return ms;
}

Test(measure, resume_matches_one_run_and_threads_do_not_matter)
{
    char *ckpt, *dir = make_model(&ckpt);
    char *full = ts_path(dir, "full.json"), *part = ts_path(dir, "part.json"), *par = ts_path(dir, "par.json");
    rt_measure_result r;
    mixq_error err;
    cr_assert_eq(measure_to(dir, full, 0, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    /* embedding (tied) + 7 matrices per layer x 2 */
    cr_assert_eq(r.tensors, 15);
    cr_assert_eq(r.measured, 15);
    cr_assert_eq(r.chunks, 3);
    cr_assert_eq(r.forwards, 3 + 15 * 3);
    cr_assert(r.base_kept && r.base_forwards == 3);
    /* interrupted after 4 tensors (the file holds them), then resumed */
    cr_assert_eq(measure_to(dir, part, 4, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert(r.measured == 4 && r.remaining == 11);
    mx_measurement *p = read_meas(part);
    cr_assert_eq(p->n, 4);
    mx_measurement_free(p);
    cr_assert_eq(measure_to(dir, part, 0, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert(r.measured == 11 && r.resumed == 4 && r.remaining == 0);
    cr_assert_eq(measure_to(dir, par, 0, 3, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    /* base logits too large to keep: recomputed for every chunk, the same results */
    char *rec = ts_path(dir, "rec.json");
    base_cap = 1;
    cr_assert_eq(measure_to(dir, rec, 0, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    base_cap = 0;
    cr_assert(!r.base_kept);
    cr_assert_eq(r.forwards, 3 + 15 * 3 * 2);
    cr_assert_eq(r.base_forwards, 3 + 15 * 3);
    mx_measurement *e = read_meas(rec);
    mx_measurement *a = read_meas(full), *b = read_meas(part), *c = read_meas(par);
    for (size_t i = 0; i < 15; i++) cr_assert_eq(e->t[i].kld, a->t[i].kld, "%s", a->t[i].name);
    mx_measurement_free(e);
    free(rec);
    cr_assert(a->n == 15 && b->n == 15 && c->n == 15);
    for (size_t i = 0; i < 15; i++) {
        cr_assert_str_eq(a->t[i].name, b->t[i].name);
        cr_assert_eq(a->t[i].kld, b->t[i].kld, "%s: %.17g vs %.17g", a->t[i].name, a->t[i].kld, b->t[i].kld);
        cr_assert_eq(a->t[i].kld, c->t[i].kld, "%s: 1 vs 3 threads", a->t[i].name);
        cr_assert(a->t[i].kld > 0, "%s: %g", a->t[i].name, a->t[i].kld);
    }
    /* no timings in the file: one run, a resumed run and 3 threads give the same bytes */
    size_t la, lb, lc;
    uint8_t *fa = ts_read_file(full, &la), *fb = ts_read_file(part, &lb), *fc = ts_read_file(par, &lc);
    cr_assert(fa && fb && fc);
    cr_assert(la == lb && memcmp(fa, fb, la) == 0, "resumed file differs");
    cr_assert(la == lc && memcmp(fa, fc, la) == 0, "3-thread file differs");
    free(fa);
    free(fb);
    free(fc);
    cr_assert_str_eq(a->reference, "int3_dq:16");
    cr_assert(a->ctx == 16 && a->chunks == 3 && !a->imatrix_xxh3[0] && isfinite(a->base_perplexity));
    /* the file's model identity is the checkpoint's */
    st_model *sm = NULL;
    cr_assert_eq(st_open(ckpt, &sm, &err), MIXQ_OK);
    char id[17];
    mx_model_identity(sm, id);
    st_close(sm);
    cr_assert_str_eq(id, a->model_xxh3);
    /* write/read round trip */
    char *copy = ts_path(dir, "copy.json");
    cr_assert_eq(mx_measurement_write(a, copy, &err), MIXQ_OK);
    mx_measurement *d = read_meas(copy);
    cr_assert_eq(mx_measurement_same_settings(d, a, copy, &err), MIXQ_OK, "%s", err.message);
    for (size_t i = 0; i < 15; i++) cr_assert(d->t[i].kld == a->t[i].kld && !strcmp(d->t[i].name, a->t[i].name));
    mx_measurement_free(a);
    mx_measurement_free(b);
    mx_measurement_free(c);
    mx_measurement_free(d);
    /* a coarser reference moves the output more, tensor by tensor in total */
    char *two = ts_path(dir, "two.json");
    cr_assert_eq(measure_to(dir, two, 0, 1, "int2_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    a = read_meas(full);
    b = read_meas(two);
    double s3 = 0, s2 = 0;
    for (size_t i = 0; i < 15; i++) {
        s3 += a->t[i].kld;
        s2 += b->t[i].kld;
    }
    cr_assert(s2 > s3, "int2_dq %g, int3_dq %g", s2, s3);
    mx_measurement_free(a);
    mx_measurement_free(b);
    free(full), free(part), free(par), free(copy), free(two), free(ckpt), free(dir);
}

Test(measure, other_settings_are_refused)
{
    char *ckpt, *dir = make_model(&ckpt);
    char *out = ts_path(dir, "m.json");
    rt_measure_result r;
    mixq_error err;
    cr_assert_eq(measure_to(dir, out, 2, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(measure_to(dir, out, 0, 1, "int3_dq", 2, &r, &err), MIXQ_E_INVALID_ARG);
    cr_assert(one_line(err.message) && strstr(err.message, "m.json") && strstr(err.message, "other calibration input"),
              "%s", err.message);
    cr_assert_eq(measure_to(dir, out, 0, 1, "int2_dq", 3, &r, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "another reference type (int3_dq:16, asked int2_dq:16)"), "%s", err.message);
    cr_assert_eq(measure_to(dir, out, 0, 1, "f16", 3, &r, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "quantized type"), "%s", err.message);
    /* the file was left as it was: 2 tensors, resumable */
    mx_measurement *ms = read_meas(out);
    cr_assert_eq(ms->n, 2);
    mx_measurement_free(ms);
    /* a container is not a reference */
    char *mxq = ts_path(dir, "m.mxq");
    char *e = NULL;
    cr_assert_eq(RUN(NULL, &e, "convert", ckpt, "-o", mxq, "-t", "int8", "-q"), 0, "%s", e);
    free(e);
    char *cfgdir = dir;
    e = NULL;
    char *tok = ts_path(dir, "t.tok");
    ts_write_file(tok, "1 2 3 4 5 6 7 8 9 10", 20);
    cr_assert_eq(RUN(NULL, &e, "measure", mxq, "--config", cfgdir, "--tokens", tok, "--ctx", "4", "-o", out), 2);
    cr_assert(strstr(e, "is a container"), "%s", e);
    free(e);
    free(tok), free(mxq), free(out), free(ckpt), free(dir);
}

Test(measure, bad_files_are_one_line_errors)
{
    char *dir = ts_tmpdir_tracked();
    char *p = ts_path(dir, "bad.json");
    static const char *const bad[] = {
        "[]",
        "{\"format\": \"mixq-plan\", \"version\": 1}",
        "{\"format\": \"mixq-measurement\", \"version\": 9}",
        "{\"format\": \"mixq-measurement\", \"version\": 1, \"model\": {\"xxh3\": \"zz\", \"tensors\": 1}}",
        "{\"format\": \"mixq-measurement\", \"version\": 1, \"model\": {\"xxh3\": \"0123456789abcdef\", \"tensors\": 1},"
        " \"reference\": \"int3_dq:16\", \"input\": {\"tokens_xxh3\": \"0123456789abcdef\", \"ctx\": 4, \"chunks\": 1},"
        " \"tensors\": [{\"name\": \"a\", \"kld\": -1}]}",
        "{\"format\": \"mixq-measurement\", \"version\": 1, \"model\": {\"xxh3\": \"0123456789abcdef\", \"tensors\": 1},"
        " \"reference\": \"int3_dq:16\", \"input\": {\"tokens_xxh3\": \"0123456789abcdef\", \"ctx\": 4, \"chunks\": 1},"
        " \"tensors\": [{\"name\": \"a\", \"kld\": 1}, {\"name\": \"a\", \"kld\": 2}]}",
        "{\"format\": \"mixq-measurement\", \"version\": 1, \"extra\": 1}",
    };
    static const char *const needle[] = {"not a JSON object", "not a measurement file", "version", "\"model\"",
                                         "\"kld\" must be", "appears twice", "unknown key"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ts_write_file(p, bad[i], strlen(bad[i]));
        mx_measurement *ms = NULL;
        mixq_error err;
        cr_assert_neq(mx_measurement_read(p, &ms, &err), MIXQ_OK, "%s", bad[i]);
        cr_assert(one_line(err.message) && strstr(err.message, "bad.json") && strstr(err.message, needle[i]),
                  "%zu: %s", i, err.message);
    }
    free(p);
    free(dir);
}

/* KLD of eval on a converted container against the source, on the same tokens. */
static double eval_kld(const char *mxq, const char *cfgdir, const char *ckpt)
{
    rt_model *m = NULL, *base = NULL;
    mixq_error err;
    cr_assert_eq(rt_model_open(mxq, cfgdir, &m, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(rt_model_open(ckpt, NULL, &base, &err), MIXQ_OK, "%s", err.message);
    size_t n;
    int32_t *tok = make_tokens(&n);
    rt_eval_options o = {.ctx = 16, .max_chunks = 3};
    rt_eval_result r;
    cr_assert_eq(rt_eval(m, base, tok, n, &o, &r, &err), MIXQ_OK, "%s", err.message);
    free(tok);
    rt_model_close(m);
    rt_model_close(base);
    return r.kld_mean;
}

Test(measure, kld_is_the_converted_containers)
{
    char *ckpt, *dir = make_model(&ckpt);
    char *out = ts_path(dir, "m.json"), *mxq = ts_path(dir, "one.mxq");
    rt_measure_result r;
    mixq_error err;
    cr_assert_eq(measure_to(dir, out, 0, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    mx_measurement *ms = read_meas(out);
    static const char *const names[] = {"model.layers.1.mlp.down_proj.weight", "model.embed_tokens.weight"};
    for (int k = 0; k < 2; k++) {
        char rule[128];
        snprintf(rule, sizeof rule, "%s=int3_dq", names[k]);
        char *e = NULL;
        cr_assert_eq(RUN(NULL, &e, "convert", ckpt, "-o", mxq, "-f", "-q", "--strategy", "uniform", "-t", "f32",
                         "--override", rule), 0, "%s", e);
        free(e);
        double want = eval_kld(mxq, dir, ckpt);
        const mx_meas_tensor *t = mx_measurement_find(ms, names[k]);
        cr_assert(t);
        /* the same quantized values; only the matmul differs (f32 values against the fused int3_dq kernel) */
        cr_assert(fabs(t->kld - want) <= 1e-3 * want, "%s: measured %.9g, container %.9g", names[k], t->kld, want);
    }
    mx_measurement_free(ms);
    free(out), free(mxq), free(ckpt), free(dir);
}

static void capture_warning(void *ctx, const char *msg)
{
    int *n = ctx;
    if (strstr(msg, "has no measurement for tensor")) (*n)++;
}

static mixq_plan *plan_with(const char *ckpt, const char *meas, double bpw, int *warnings, mixq_error *err,
                            mixq_status want)
{
    mixq_plan_options o;
    mixq_plan_options_init(&o);
    o.strategy = MIXQ_STRATEGY_BUDGET;
    o.target_bpw = bpw;
    o.measurement_path = meas;
    o.threads = 1;
    o.warning = capture_warning;
    o.warning_ctx = warnings;
    mixq_plan *p = NULL;
    mixq_status s = mixq_plan_create(ckpt, &o, &p, err);
    cr_assert_eq(s, want, "%s", err->message);
    return p;
}

Test(measure, plans_predict_kld_and_more_bytes_predict_less)
{
    char *ckpt, *dir = make_model(&ckpt);
    char *out = ts_path(dir, "m.json");
    rt_measure_result r;
    mixq_error err;
    cr_assert_eq(measure_to(dir, out, 0, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    double prev = INFINITY;
    int warnings = 0;
    for (double bpw = 3.5; bpw <= 9.0; bpw += 0.5) {
        mixq_plan *p = plan_with(ckpt, out, bpw, &warnings, &err, MIXQ_OK);
        mixq_plan_summary s;
        mixq_plan_get_summary(p, &s);
        cr_assert_str_eq(s.weights, "measured");
        cr_assert_str_eq(s.measurement, "m.json");
        cr_assert(isfinite(s.predicted_kld) && s.predicted_kld > 0);
        cr_assert(s.predicted_kld <= prev, "%g bpw: predicted %g after %g", bpw, s.predicted_kld, prev);
        prev = s.predicted_kld;
        /* the total is the sum of the tensors', each weight x error */
        double sum = 0;
        for (size_t i = 0; i < mixq_plan_tensor_count(p); i++) {
            mixq_plan_tensor t;
            mixq_plan_tensor_get(p, i, &t);
            if (isfinite(t.predicted_kld)) {
                cr_assert(fabs(t.predicted_kld - t.weight * t.estimated_error) <= 1e-12 * (t.predicted_kld + 1e-300));
                sum += t.predicted_kld;
            }
        }
        cr_assert(fabs(sum - s.predicted_kld) <= 1e-9 * s.predicted_kld, "%g vs %g", sum, s.predicted_kld);
        /* a plan file keeps it */
        char *pf = ts_path(dir, "p.json");
        cr_assert_eq(mixq_plan_save(p, pf, 1, &err), MIXQ_OK, "%s", err.message);
        mixq_plan *q = NULL;
        cr_assert_eq(mixq_plan_load(pf, &q, &err), MIXQ_OK, "%s", err.message);
        mixq_plan_summary qs;
        mixq_plan_get_summary(q, &qs);
        cr_assert_str_eq(qs.weights, "measured");
        cr_assert_str_eq(qs.measurement, "m.json");
        cr_assert_eq(qs.predicted_kld, s.predicted_kld);
        mixq_plan_free(q);
        free(pf);
        mixq_plan_free(p);
    }
    cr_assert(prev < INFINITY);
    cr_assert_eq(warnings, 0);
    /* a file missing tensors: a warning each, and still a plan */
    mx_measurement *ms = read_meas(out);
    size_t all = ms->n;
    ms->n -= 3; /* written without the last 3 (restored before it is freed) */
    char *part = ts_path(dir, "part.json");
    cr_assert_eq(mx_measurement_write(ms, part, &err), MIXQ_OK);
    mixq_plan *p = plan_with(ckpt, part, 4.5, &warnings, &err, MIXQ_OK);
    cr_assert_eq(warnings, 3);
    mixq_plan_free(p);
    /* a file of another model: its tensor named, or its identity */
    char *orig = ms->t[0].name;
    ms->t[0].name = strdup("model.layers.9.mlp.up_proj.weight");
    cr_assert_eq(mx_measurement_write(ms, part, &err), MIXQ_OK);
    plan_with(ckpt, part, 4.5, &warnings, &err, MIXQ_E_INVALID_ARG);
    cr_assert(one_line(err.message) && strstr(err.message, "part.json") &&
              strstr(err.message, "\"model.layers.9.mlp.up_proj.weight\" is not in this checkpoint"), "%s", err.message);
    free(ms->t[0].name);
    ms->t[0].name = orig;
    ms->model_xxh3[0] = ms->model_xxh3[0] == '0' ? '1' : '0';
    cr_assert_eq(mx_measurement_write(ms, part, &err), MIXQ_OK);
    plan_with(ckpt, part, 4.5, &warnings, &err, MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "part.json: measured on another model"), "%s", err.message);
    ms->n = all;
    mx_measurement_free(ms);
    free(part), free(out), free(ckpt), free(dir);
}

Test(measure, sensitivity_and_uniform_use_it_too)
{
    char *ckpt, *dir = make_model(&ckpt);
    char *out = ts_path(dir, "m.json");
    rt_measure_result r;
    mixq_error err;
    cr_assert_eq(measure_to(dir, out, 0, 1, "int3_dq", 3, &r, &err), MIXQ_OK, "%s", err.message);
    for (int k = 0; k < 2; k++) {
        mixq_plan_options o;
        mixq_plan_options_init(&o);
        o.strategy = k ? MIXQ_STRATEGY_SENSITIVITY : MIXQ_STRATEGY_UNIFORM;
        o.measurement_path = out;
        o.threads = 1;
        mixq_plan *p = NULL;
        cr_assert_eq(mixq_plan_create(ckpt, &o, &p, &err), MIXQ_OK, "%s", err.message);
        mixq_plan_summary s;
        mixq_plan_get_summary(p, &s);
        cr_assert_str_eq(s.weights, "measured");
        cr_assert(isfinite(s.predicted_kld) && s.predicted_kld > 0);
        /* sensitivity: scores are predicted KLD at the base type over their median, so the median tensor scores 1 */
        size_t n1 = 0, above = 0, below = 0;
        for (size_t i = 0; k && i < mixq_plan_tensor_count(p); i++) {
            mixq_plan_tensor t;
            mixq_plan_tensor_get(p, i, &t);
            if (strcmp(t.reason, "strategy")) continue;
            n1 += t.score == 1.0;
            above += t.score > 1.0;
            below += t.score < 1.0;
        }
        if (k) cr_assert(n1 == 1 && above == 7 && below == 7, "%zu %zu %zu", n1, above, below);
        mixq_plan_free(p);
    }
    free(out), free(ckpt), free(dir);
}

Test(measure, cli_plan_convert_eval_show_the_prediction)
{
    char *ckpt, *dir = make_model(&ckpt);
    char *tok = ts_path(dir, "t.tok"), *out = ts_path(dir, "m.json"), *mxq = ts_path(dir, "p.mxq");
    char text[600] = "";
    for (int i = 0; i < 60; i++) sprintf(text + strlen(text), "%d ", (i * 7 + i / 5) % 48);
    ts_write_file(tok, text, strlen(text));
    char *o = NULL, *e = NULL;
    cr_assert_eq(RUN(&o, &e, "measure", ckpt, "--tokens", tok, "--ctx", "16", "-o", out, "-j", "2"), 0, "%s", e);
    cr_assert(strstr(e, "15 tensors as int3_dq:16") && strstr(e, "cost: 48 forward passes of 16 tokens (15 tensors x 3 chunks + 3 of the base)"), "%s", e);
    free(o), free(e);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "measure", ckpt, "--tokens", tok, "--ctx", "16", "-o", out, "-q"), 0, "%s", e);
    cr_assert(!*e && !*o, "quiet: %s%s", o, e);
    free(o), free(e);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "plan", ckpt, "--target-bpw", "4.5", "--measurement", out), 0, "%s", e);
    cr_assert(strstr(o, "pred.kld") && strstr(o, "w.err") && strstr(o, "predicted KLD ") &&
              strstr(o, "weights measured"), "%s", o);
    free(o), free(e);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "convert", ckpt, "-o", mxq, "--target-bpw", "4.5", "--measurement", out, "-q"), 0, "%s", e);
    free(o), free(e);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "eval", mxq, "--config", dir, "--tokens", tok, "--ctx", "16", "--base", ckpt), 0, "%s", e);
    cr_assert(strstr(o, "KLD predicted") && strstr(o, "(the plan's, from m.json)"), "%s", o);
    free(o), free(e);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "eval", mxq, "--config", dir, "--tokens", tok, "--ctx", "16", "--base", ckpt, "--json"), 0,
                 "%s", e);
    json_t *j = json_loads(o, 0, NULL);
    cr_assert(json_is_number(json_object_get(j, "predicted_kld")), "%s", o);
    json_decref(j);
    free(o), free(e);
    /* convert passes the planner's warnings on: a measurement without some tensor */
    mx_measurement *ms = read_meas(out);
    ms->n--;
    char *part = ts_path(dir, "part.json");
    mixq_error err;
    cr_assert_eq(mx_measurement_write(ms, part, &err), MIXQ_OK);
    ms->n++;
    mx_measurement_free(ms);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "convert", ckpt, "-o", mxq, "-f", "--target-bpw", "4.5", "--measurement", part, "-q"), 0,
                 "%s", e);
    cr_assert(strstr(e, "part.json has no measurement for tensor \"model.layers.1.mlp.down_proj.weight\""), "%s", e);
    free(o), free(e), free(part);
    /* the header records the measurement */
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "dump", mxq, "--json"), 0, "%s", e);
    cr_assert(strstr(o, "\"measurement\"") && strstr(o, "\"predicted_kld\""), "%s", o);
    free(o), free(e);
    o = e = NULL;
    cr_assert_eq(RUN(&o, &e, "dump", mxq), 0, "%s", e);
    cr_assert(strstr(o, "measurement: part.json (xxh3 ") && strstr(o, "), predicted KLD "), "%s", o);
    free(o), free(e);
    free(tok), free(out), free(mxq), free(ckpt), free(dir);
}
