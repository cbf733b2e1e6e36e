/*
 * kernel_cb.c - scalar reference kernels of the codebook types cb4_dq,
 * cb3_dq, cb2_dq (FORMAT.md §4.14) and the fit of a tensor's codebook.
 *
 * Stored: per tensor K = 2^b int8 levels L (the codebook section); per
 * element a b-bit index q; per group a signed 6-bit scale code c (stored
 * c + 32); per super-block of 256 weights an f16 scale d.  Reconstruction:
 * x^ = fl(fl(d * c) * L[q]) (the first product is exact).
 *
 * Quantizing (not normative): each group's float scale is searched for the
 * levels (candidates that put the group's largest |x| on either end level,
 * scaled by 0.80, 0.85, ..., 1.10, each refit by weighted least squares for
 * its nearest-level assignment; the best then reassigned and refit twice
 * more while that lowers the error); the super-block's group scales are coded
 * under an f16 d (d from max |scale| / 31, and its least-squares refit),
 * then each group code is moved by one if that lowers the group's error.
 * Elements take the level nearest to fl(x / s) (ties: the lower level).
 *
 * Fitting (kernel_cbN_dq_fit): weighted Lloyd iterations on the
 * group-normalized values (weights importance * scale^2) alternating with
 * new group scales (the full search after the first round, then refits from
 * the last scales), started from quantiles; then the levels are scaled to
 * max |L| = 127, rounded, and refined by two more rounds in integers (full
 * scale search, then the Lloyd means scaled back to 127 and rounded).  Everything is sequential: the same inputs give the same bytes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernels.h"

#define CB_MAX 16           /* most levels (4 bits) */
#define CB_CLO (-32)        /* group scale codes */
#define CB_CHI 31
#define CB_CBIAS 32
#define CB_STEPS 7          /* scale candidates per end level: 0.80, 0.85, ..., 1.10 */
#define CB_REFINE 2         /* reassign-and-refit rounds of the best candidate scale */
#define CB_FIT_ITERS 10     /* float Lloyd rounds */
#define CB_INT_ITERS 2      /* rounds with integer levels */

/* The levels sorted ascending, their stored indices and the midpoints between neighbours. */
typedef struct cb_tab {
    int K;
    float v[CB_MAX];
    uint8_t idx[CB_MAX];
    float mid[CB_MAX];
} cb_tab;

/* Builds the table of K levels (any order; equal levels keep their index order). */
static void tab_init(cb_tab *T, const float *lv, int K)
{
    T->K = K;
    for (int k = 0; k < K; k++) {
        T->v[k] = lv[k];
        T->idx[k] = (uint8_t)k;
    }
    for (int i = 1; i < K; i++) { /* insertion sort: stable */
        float v = T->v[i];
        uint8_t id = T->idx[i];
        int j = i - 1;
        while (j >= 0 && T->v[j] > v) {
            T->v[j + 1] = T->v[j];
            T->idx[j + 1] = T->idx[j];
            j--;
        }
        T->v[j + 1] = v;
        T->idx[j + 1] = id;
    }
    for (int k = 0; k + 1 < K; k++) T->mid[k] = 0.5f * (T->v[k] + T->v[k + 1]);
}

/* Position (in sorted order) of the level nearest to t: the first k with t <= mid[k], else K-1 (NaN: 0). */
static int tab_nearest(const cb_tab *T, float t)
{
    int lo = 0, hi = T->K - 1;
    while (lo < hi) { /* mid[] is non-decreasing: binary search */
        int m = (lo + hi) / 2;
        if (t > T->mid[m])
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* Sorted position of the element code of x for the group scale s (s == 0: the level nearest 0). */
static int elem_pos(const cb_tab *T, float x, float s)
{
    return tab_nearest(T, s != 0.0f ? x / s : 0.0f);
}

/* sum w x L[q] and sum w L[q]^2 for the nearest levels of the group at scale s. */
static void ls_sums(const cb_tab *T, const float *x, const float *w, size_t n, float s, double *sxl, double *sll)
{
    double a = 0.0, b = 0.0;
    for (size_t k = 0; k < n; k++) {
        double l = T->v[elem_pos(T, x[k], s)], wk = w ? (double)w[k] : 1.0;
        a += wk * (double)x[k] * l;
        b += wk * l * l;
    }
    *sxl = a;
    *sll = b;
}

/* Weighted error sum w (x - fl(s * L[q]))^2 of a group for scale s, in double. */
static double group_err(const cb_tab *T, const float *x, const float *w, size_t n, float s)
{
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        float v = s * T->v[elem_pos(T, x[i], s)];
        double d = (double)x[i] - (double)v;
        e += (w ? (double)w[i] : 1.0) * d * d;
    }
    return e;
}

/* A group's scale refined from s: the least-squares refit for the nearest levels, while it lowers the error. */
static float refine_scale(const cb_tab *T, const float *x, const float *w, size_t n, float s)
{
    double best = -1.0;
    for (int it = 0; it < CB_REFINE && s != 0.0f; it++) {
        double sxl, sll;
        ls_sums(T, x, w, n, s, &sxl, &sll);
        if (!(sll > 0.0 && sxl * sxl / sll > best)) break;
        best = sxl * sxl / sll;
        s = (float)(sxl / sll);
    }
    return s;
}

/*
 * The float scale of one group for the levels: the plain choice puts the
 * element of largest |x| on the end level of larger magnitude; the search
 * tries both end levels at 13 scalings, each refit by weighted least
 * squares for its assignment, and keeps the largest sxl^2 / sll (the
 * smallest least-squares error).  0 for an all-zero group.
 */
static float group_scale(const cb_tab *T, const float *x, const float *w, size_t n, bool search)
{
    float amax = 0.0f, xm = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            xm = x[i];
        }
    }
    float lo = T->v[0], hi = T->v[T->K - 1];
    float ext = fabsf(hi) >= fabsf(lo) ? hi : lo;
    if (!(amax > 0.0f) || ext == 0.0f) return 0.0f;
    float best_s = xm / ext;
    if (!search) return best_s;
    double best = -1.0;
    for (int e = 0; e < 2; e++) {
        float end = e == 0 ? hi : lo;
        if (end == 0.0f) continue;
        float base = xm / end;
        for (int i = 0; i < CB_STEPS; i++) {
            double sxl, sll;
            ls_sums(T, x, w, n, base * (0.80f + 0.05f * (float)i), &sxl, &sll);
            if (sll > 0.0 && sxl * sxl / sll > best) {
                best = sxl * sxl / sll;
                best_s = (float)(sxl / sll);
            }
        }
    }
    return best > 0.0 ? refine_scale(T, x, w, n, best_s) : best_s; /* reassign at the refit scale, refit again */
}

/* The levels of the codebook section (or of p) as a table. */
static void tab_from_int8(cb_tab *T, const int8_t *L, int K)
{
    float lv[CB_MAX];
    for (int k = 0; k < K; k++) lv[k] = (float)L[k];
    tab_init(T, lv, K);
}

/* Error of a super-block for super scale d and group codes c (groups of G). */
static double sb_err(const cb_tab *T, const float *x, const float *w, size_t len, unsigned G, float d, const int *c)
{
    double e = 0.0;
    int j = 0;
    for (size_t g0 = 0; g0 < len; g0 += G, j++) {
        size_t gl = len - g0 < G ? len - g0 : G;
        e += group_err(T, x + g0, w ? w + g0 : NULL, gl, d * (float)c[j]);
    }
    return e;
}

/* Codes of the group scales sv under d (f16 value), each then moved by one if that lowers its error (search). */
static void code_scales(const cb_tab *T, const float *x, const float *w, size_t len, unsigned G, const float *sv,
                        float d, bool search, int *c)
{
    int j = 0;
    for (size_t g0 = 0; g0 < len; g0 += G, j++) {
        float t = d != 0.0f ? sv[j] / d : 0.0f;
        t = t < (float)CB_CLO ? (float)CB_CLO : t > (float)CB_CHI ? (float)CB_CHI : t;
        c[j] = mx_round_half_even(t);
        if (!search || d == 0.0f) continue;
        size_t gl = len - g0 < G ? len - g0 : G;
        const float *wg = w ? w + g0 : NULL;
        double best = group_err(T, x + g0, wg, gl, d * (float)c[j]);
        int bc = c[j];
        for (int dc = -1; dc <= 1; dc += 2) {
            int cc = c[j] + dc;
            if (cc < CB_CLO || cc > CB_CHI) continue;
            double e = group_err(T, x + g0, wg, gl, d * (float)cc);
            if (e < best) {
                best = e;
                bc = cc;
            }
        }
        c[j] = bc;
    }
}

/* One super-block: *dh and c[] get its parameters. */
static void cb_superblock(const cb_tab *T, const float *x, const float *w, size_t len, unsigned G, bool search,
                          uint16_t *dh, int *c)
{
    float sv[MX_DQ_MAX_GROUPS] = {0}, A = 0.0f;
    int ng = 0;
    for (size_t g0 = 0; g0 < len; g0 += G, ng++) {
        size_t gl = len - g0 < G ? len - g0 : G;
        sv[ng] = group_scale(T, x + g0, w ? w + g0 : NULL, gl, search);
        if (fabsf(sv[ng]) > A) A = fabsf(sv[ng]);
    }
    if (!(A > 0.0f) || !isfinite(A)) {
        *dh = 0;
        for (int j = 0; j < ng; j++) c[j] = 0;
        return;
    }
    uint16_t h = mx_f16_round_up(A / (float)CB_CHI);
    code_scales(T, x, w, len, G, sv, mx_f16_to_f32(h), search, c);
    *dh = h;
    if (!search) return;
    /* least-squares refit of d for these codes and assignments; kept if it lowers the error */
    double num = 0.0, den = 0.0;
    float d = mx_f16_to_f32(h);
    int j = 0;
    for (size_t g0 = 0; g0 < len; g0 += G, j++) {
        size_t gl = len - g0 < G ? len - g0 : G;
        float s = d * (float)c[j];
        for (size_t i = 0; i < gl; i++) {
            double l = (double)c[j] * T->v[elem_pos(T, x[g0 + i], s)], wk = w ? (double)w[g0 + i] : 1.0;
            num += wk * (double)x[g0 + i] * l;
            den += wk * l * l;
        }
    }
    if (!(den > 0.0)) return;
    float d2 = (float)(num / den);
    if (!(d2 > 0.0f) || d2 > 65504.0f) return;
    uint16_t h2 = mx_f32_to_f16(d2);
    if (h2 == h || !mx_f16_bits_finite(h2) || mx_f16_to_f32(h2) == 0.0f) return;
    int c2[MX_DQ_MAX_GROUPS];
    code_scales(T, x, w, len, G, sv, mx_f16_to_f32(h2), true, c2);
    if (sb_err(T, x, w, len, G, mx_f16_to_f32(h2), c2) < sb_err(T, x, w, len, G, d, c)) {
        *dh = h2;
        memcpy(c, c2, (size_t)ng * sizeof *c);
    }
}

/* Quantizes one row with the levels L (K of them). */
static void cb_quantize_levels(const qtype_desc *qt, const int8_t *L, const float *x, size_t n, unsigned group,
                               const mx_qparams *p, mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES], *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *sups = out.sec[MIXQ_SEC_SUPER_SCALES];
    unsigned G = mx_dq_group(group);
    size_t ng = (n + G - 1) / G, coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    bool search = p != NULL && p->search;
    const float *imp = search ? p->importance : NULL;
    cb_tab T;
    tab_from_int8(&T, L, (int)qt->codebook_levels);
    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    memset(codes, 0, mx_planes_bytes(qt->code_planes, n));
    memset(scales, 0, mx_planes_bytes(qt->scale_planes, ng));
    for (size_t b = 0, s0 = 0; s0 < n; b++, s0 += MX_DQ_SUPER) {
        size_t len = n - s0 < MX_DQ_SUPER ? n - s0 : MX_DQ_SUPER;
        int c[MX_DQ_MAX_GROUPS];
        uint16_t dh;
        cb_superblock(&T, x + s0, imp ? imp + s0 : NULL, len, G, search, &dh, c);
        mx_st16le(sups + 2 * b, dh);
        float d = mx_f16_to_f32(dh);
        int j = 0;
        for (size_t g0 = 0; g0 < len; g0 += G, j++) {
            size_t gl = len - g0 < G ? len - g0 : G, jg = s0 / G + (size_t)j;
            float s = d * (float)c[j];
            mx_planes_put(scales, qt->scale_planes, soff, jg, (unsigned)(c[j] + CB_CBIAS));
            for (size_t i = 0; i < gl; i++)
                mx_planes_put(codes, qt->code_planes, coff, s0 + g0 + i, T.idx[elem_pos(&T, x[s0 + g0 + i], s)]);
        }
    }
}

static void cb_quantize(mixq_qtype id, const float *x, size_t n, unsigned group, const mx_qparams *p,
                        mx_rowptrs out)
{
    const qtype_desc *qt = &mx_qtypes[id];
    int8_t own[CB_MAX];
    const int8_t *L = p != NULL ? p->codebook : NULL;
    if (L == NULL) { /* a tensor of this one row: its own levels */
        qt->fit_codebook(x, p != NULL && p->search ? p->importance : NULL, 1, n, group, own);
        memcpy(out.sec[MIXQ_SEC_CODEBOOK], own, qt->codebook_levels);
        L = own;
    }
    cb_quantize_levels(qt, L, x, n, group, p, out);
}

static void cb_dequantize(mixq_qtype id, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[id];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES], *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES], *cb = in.sec[MIXQ_SEC_CODEBOOK];
    unsigned G = mx_dq_group(group);
    size_t ng = (n + G - 1) / G, coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    float L[CB_MAX];
    for (unsigned k = 0; k < qt->codebook_levels; k++) L[k] = (float)(int8_t)cb[k];
    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G;
        uint16_t dh = mx_ld16le(sups + 2 * (g0 / MX_DQ_SUPER));
        if (!mx_f16_bits_finite(dh)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + g0, gl);
            continue;
        }
        int c = (int)mx_planes_get(scales, qt->scale_planes, soff, j) - CB_CBIAS;
        float s = mx_f16_to_f32(dh) * (float)c; /* exact */
        for (size_t i = 0; i < gl; i++) out[g0 + i] = s * L[mx_planes_get(codes, qt->code_planes, coff, g0 + i)];
    }
}

/* ---------------------------------------------------------------------- */
/* Fitting                                                                 */
/* ---------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/*
 * One weighted Lloyd round: every normalized value y (weight om) to its
 * nearest level, each level to the weighted mean of its values (kept if it
 * has none); integer: the means scaled to a largest |level| of 127 and
 * rounded (the group scales absorb the factor).
 */
static void lloyd_round(const float *y, const float *om, size_t N, float *lv, int K, bool integer)
{
    double num[CB_MAX] = {0}, den[CB_MAX] = {0};
    cb_tab T;
    tab_init(&T, lv, K);
    for (size_t i = 0; i < N; i++) {
        if (!(om[i] > 0.0f)) continue;
        int k = tab_nearest(&T, y[i]);
        num[k] += (double)om[i] * y[i];
        den[k] += om[i];
    }
    float amax = 0.0f;
    for (int k = 0; k < K; k++) {
        lv[k] = den[k] > 0.0 ? (float)(num[k] / den[k]) : T.v[k];
        amax = fabsf(lv[k]) > amax ? fabsf(lv[k]) : amax;
    }
    if (integer && amax > 0.0f && isfinite(amax)) /* the largest |level| back at 127, then rounded */
        for (int k = 0; k < K; k++) lv[k] = (float)mx_round_half_even(127.0f * (lv[k] / amax));
}

/* How rescale_groups finds a group's scale. */
typedef enum fit_mode {
    FIT_AMAX,   /* max |x|: normalized values in [-1, 1] */
    FIT_SEARCH, /* the full search (group_scale) */
    FIT_REFINE  /* from the group's last scale: CB_REFINE reassign-and-refit rounds */
} fit_mode;

/*
 * Each group's scale gs[] for the levels lv as `mode` says; y = x / s and
 * om = w s^2 for its elements (0 for s == 0).
 */
static void rescale_groups(const float *x, const float *w, size_t rows, size_t n, unsigned G, const float *lv, int K,
                           fit_mode mode, float *gs, float *y, float *om)
{
    cb_tab T;
    if (mode != FIT_AMAX) tab_init(&T, lv, K);
    size_t j = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t g0 = 0; g0 < n; g0 += G, j++) {
            size_t gl = n - g0 < G ? n - g0 : G, o = r * n + g0;
            const float *wg = w ? w + o : NULL;
            float s = 0.0f;
            if (mode == FIT_AMAX)
                for (size_t i = 0; i < gl; i++) s = fabsf(x[o + i]) > s ? fabsf(x[o + i]) : s;
            else if (mode == FIT_SEARCH)
                s = group_scale(&T, x + o, wg, gl, true);
            else
                s = refine_scale(&T, x + o, wg, gl, gs[j]);
            gs[j] = s;
            for (size_t i = 0; i < gl; i++) {
                y[o + i] = s != 0.0f ? x[o + i] / s : 0.0f;
                om[o + i] = s != 0.0f ? (wg ? wg[i] : 1.0f) * s * s : 0.0f;
            }
        }
}

static void cb_fit(unsigned K, const float *x, const float *w, size_t rows, size_t n, unsigned group, int8_t *L)
{
    unsigned G = mx_dq_group(group);
    size_t N = rows * n;
    float lv[CB_MAX];
    for (unsigned k = 0; k < K; k++) /* fallback (no data, no memory): an even grid over [-127, 127] */
        L[k] = (int8_t)mx_round_half_even(-127.0f + 254.0f * (float)k / (float)(K - 1));
    float *y = malloc((N ? N : 1) * sizeof *y), *om = malloc((N ? N : 1) * sizeof *om);
    float *srt = malloc((N ? N : 1) * sizeof *srt);
    float *gs = malloc((rows * ((n + G - 1) / G) + 1) * sizeof *gs);
    if (!y || !om || !srt || !gs || N == 0) goto out;
    rescale_groups(x, w, rows, n, G, NULL, (int)K, FIT_AMAX, gs, y, om);
    size_t m = 0;
    for (size_t i = 0; i < N; i++)
        if (om[i] > 0.0f) srt[m++] = y[i];
    if (m == 0) goto out;
    qsort(srt, m, sizeof *srt, cmp_float);
    for (unsigned k = 0; k < K; k++) { /* quantiles (k + 1/2) / K, made strictly increasing */
        lv[k] = srt[(size_t)(((double)k + 0.5) / K * (double)m)];
        if (k > 0 && !(lv[k] > lv[k - 1])) lv[k] = lv[k - 1] + 1.0f / (float)(4 * K);
    }
    for (int it = 0; it < CB_FIT_ITERS; it++) { /* the full search once, then refits from the last scales */
        lloyd_round(y, om, N, lv, (int)K, false);
        rescale_groups(x, w, rows, n, G, lv, (int)K, it == 0 ? FIT_SEARCH : FIT_REFINE, gs, y, om);
    }
    float amax = 0.0f;
    for (unsigned k = 0; k < K; k++) amax = fabsf(lv[k]) > amax ? fabsf(lv[k]) : amax;
    if (!(amax > 0.0f) || !isfinite(amax)) goto out;
    for (unsigned k = 0; k < K; k++) lv[k] = (float)mx_round_half_even(127.0f * (lv[k] / amax));
    for (int it = 0; it < CB_INT_ITERS; it++) { /* the group scales follow the integer levels */
        rescale_groups(x, w, rows, n, G, lv, (int)K, FIT_SEARCH, gs, y, om);
        lloyd_round(y, om, N, lv, (int)K, true);
    }
    qsort(lv, K, sizeof *lv, cmp_float);
    for (unsigned k = 0; k < K; k++) L[k] = (int8_t)lv[k];
out:
    free(y);
    free(om);
    free(srt);
    free(gs);
}

#define CB_KERNELS(NAME, ID, K)                                                                              \
    void kernel_##NAME##_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,         \
                                      mx_rowptrs out)                                                        \
    {                                                                                                        \
        cb_quantize(ID, x, n, group, p, out);                                                                \
    }                                                                                                        \
    void kernel_##NAME##_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)                \
    {                                                                                                        \
        cb_dequantize(ID, in, n, group, out);                                                                \
    }                                                                                                        \
    void kernel_##NAME##_fit(const float *x, const float *w, size_t rows, size_t n, unsigned group,         \
                             int8_t *levels)                                                                 \
    {                                                                                                        \
        cb_fit(K, x, w, rows, n, group, levels);                                                             \
    }

CB_KERNELS(cb4_dq, MIXQ_QT_CB4_DQ, 16)
CB_KERNELS(cb3_dq, MIXQ_QT_CB3_DQ, 8)
CB_KERNELS(cb2_dq, MIXQ_QT_CB2_DQ, 4)
