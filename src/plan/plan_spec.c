/*
 * plan_spec.c - type specs ("int4", "int4:32", "int8:row"), the candidate
 * list and the --override/--keep rules of a planning run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "plan/plan.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "plan/plan_internal.h"

/* The group recorded for qt when the caller asked for `global` (0 = defaults, MIXQ_GROUP_PER_ROW). */
unsigned mx_spec_default_group(const qtype_desc *qt, unsigned global)
{
    if (!qt->quantized) return 0;
    if (global == MIXQ_GROUP_PER_ROW) return qtype_group_ok(qt, 0) ? 0 : qt->group_default;
    if (global != 0 && qtype_group_ok(qt, global)) return global;
    return qt->group_default;
}

bool mx_qtype_has_kernels(const qtype_desc *qt)
{
    if (!qt->quantized) return true;
    const mx_kernel_set *k = mx_kernels();
    return k->quantize_row[qt->id] != NULL && k->dequantize_row[qt->id] != NULL;
}

/* Parses a type spec of len bytes; what names it in messages. */
mixq_status mx_spec_parse(const char *spec, size_t len, unsigned global, const char *what, mx_cand *out,
                          mixq_error *err)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: empty or overlong type '%.*s'", what, (int)(len < 60 ? len : 60), spec);
    memcpy(buf, spec, len);
    buf[len] = '\0';
    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    const qtype_desc *qt = qtype_by_name(buf);
    if (!qt || qt->id == MIXQ_QT_RAW)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: unknown type '%s'", what, buf);
    if (!mx_qtype_has_kernels(qt))
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: type '%s' has no kernels in this build", what, buf);
    out->qt = qt;
    if (!colon) {
        out->group_size = mx_spec_default_group(qt, global);
        return MIXQ_OK;
    }
    const char *g = colon + 1;
    if (!qt->quantized) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: '%s' takes no group size", what, buf);
    unsigned long v = 0;
    if (!strcmp(g, "row") || !strcmp(g, "tensor")) {
        v = 0;
    } else {
        char *end;
        if (!*g || *g < '0' || *g > '9') return mx_err(err, MIXQ_E_INVALID_ARG, "%s: bad group size '%s'", what, g);
        v = strtoul(g, &end, 10);
        if (*end || v == 0 || v > 1u << 20) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: bad group size '%s'", what, g);
    }
    if (!qtype_group_ok(qt, (unsigned)v))
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: group size %s is not allowed for %s: use a power of two from %u to %u%s",
                      what, g, qt->name, qt->group_min, qt->group_max,
                      qt->allow_row_group ? (qt->tensor_scale ? " or 'tensor'" : " or 'row'") : "");
    out->group_size = (unsigned)v;
    return MIXQ_OK;
}

/* "int4:64", "int8:row", "fp8_e4m3:tensor", "f16" into buf. */
void mx_spec_string(const mx_cand *c, char *buf, size_t len)
{
    if (!c->qt->quantized) snprintf(buf, len, "%s", c->qt->name);
    else if (c->group_size) snprintf(buf, len, "%s:%u", c->qt->name, c->group_size);
    else snprintf(buf, len, "%s:%s", c->qt->name, c->qt->tensor_scale ? "tensor" : "row");
}

/*
 * The candidate list: the user's, or every quantized type with kernels (but
 * the opt_in ones; with "all" those too) plus f16.
 */
mixq_status mx_plan_parse_candidates(const mixq_plan_options *o, mx_cand **out, size_t *n, mixq_error *err)
{
    *out = calloc(MIXQ_QT_COUNT * 8 + 8, sizeof **out);
    if (!*out) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    size_t k = 0;
    if (!o->candidates && o->strategy == MIXQ_STRATEGY_SENSITIVITY) {
        /* the seed's ladder: 2, 4, 8 and 16 bits (the base type is added by the caller) */
        static const mixq_qtype ladder[] = {MIXQ_QT_INT2_DQ, MIXQ_QT_INT4, MIXQ_QT_INT8, MIXQ_QT_F16};
        for (size_t i = 0; i < sizeof ladder / sizeof *ladder; i++) {
            const qtype_desc *qt = qtype_get(ladder[i]);
            if (qt && mx_qtype_has_kernels(qt)) (*out)[k++] = (mx_cand){qt, mx_spec_default_group(qt, o->group_size)};
        }
    } else if (!o->candidates || !strcmp(o->candidates, "all")) {
        bool all = o->candidates != NULL; /* "all": the opt-in types too */
        for (int id = 0; id < MIXQ_QT_COUNT; id++) {
            const qtype_desc *qt = qtype_get((mixq_qtype)id);
            if (!qt || !qt->quantized || (qt->opt_in && !all) || !mx_qtype_has_kernels(qt)) continue;
            unsigned g = mx_spec_default_group(qt, o->group_size);
            (*out)[k++] = (mx_cand){qt, g};
            /* without --group-size, also the coarsest group: the type's cheapest variant */
            if (o->group_size == 0 && g != 0 && qt->group_max > g) (*out)[k++] = (mx_cand){qt, qt->group_max};
        }
        (*out)[k++] = (mx_cand){qtype_get(MIXQ_QT_F16), 0};
    } else {
        const char *s = o->candidates;
        if (!strcmp(s, "gguf")) s = MIXQ_GGUF_CANDIDATES; /* the types llama.cpp holds exactly */
        while (*s) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (k >= MIXQ_QT_COUNT * 8) return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.candidates: too many types");
            mx_cand c;
            mixq_status st = mx_spec_parse(s, len, o->group_size, "plan_options.candidates", &c, err);
            if (st != MIXQ_OK) return st;
            bool dup = false;
            for (size_t j = 0; j < k; j++) dup |= (*out)[j].qt == c.qt && (*out)[j].group_size == c.group_size;
            if (!dup) (*out)[k++] = c;
            s += len;
            if (*s == ',') s++;
        }
        if (k == 0) return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.candidates: the list is empty");
    }
    *n = k;
    return MIXQ_OK;
}


void mx_rules_free(rule *r, size_t n)
{
    if (!r) return;
    for (size_t i = 0; i < n; i++) free(r[i].glob);
    free(r);
}

mixq_status mx_plan_parse_rules(const mixq_plan_options *o, rule **out, mixq_error *err)
{
    *out = calloc(o->n_rules ? o->n_rules : 1, sizeof **out);
    if (!*out) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < o->n_rules; i++) {
        const char *s = o->rules[i];
        const char *eq = s ? strrchr(s, '=') : NULL;
        if (!eq || eq == s)
            return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.rules '%s': expected GLOB=TYPE (or GLOB=keep)", s ? s : "");
        (*out)[i].glob = strndup(s, (size_t)(eq - s));
        if (!(*out)[i].glob) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        if (!strcmp(eq + 1, "keep")) {
            (*out)[i].keep = true;
            continue;
        }
        char what[128];
        snprintf(what, sizeof what, "plan_options.rules '%.100s'", s);
        mixq_status st = mx_spec_parse(eq + 1, strlen(eq + 1), o->group_size, what, &(*out)[i].cand, err);
        if (st != MIXQ_OK) return st;
    }
    return MIXQ_OK;
}

