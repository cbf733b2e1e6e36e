/* test_interop.c - exports to other tools' formats: what the Python tests (tests/python/test_interop.py) cannot reach. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mixq.h"
#include "test_support.h"

static char *tiny_container(const char *dir, mixq_qtype type)
{
    char *src = ts_source_path("testdata/tiny-llama-f32"), *out = ts_path(dir, "in.mxq");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    mixq_error err;
    cr_assert_eq(mixq_convert(src, out, &o, &err), MIXQ_OK, "%s", err.message);
    free(src);
    return out;
}

typedef struct stop_after {
    volatile sig_atomic_t flag;
    size_t calls, limit;
} stop_after;

static void progress_stop(void *ctx, size_t done, size_t total, const char *name)
{
    (void)done, (void)total, (void)name;
    stop_after *s = ctx;
    if (++s->calls >= s->limit) s->flag = 1;
}

/* Cancelled after k tensors (k = 1 .. all): no directory, and nothing beside it. */
Test(export_hf, cancel_leaves_nothing)
{
    char *dir = ts_tmpdir_tracked();
    char *in = tiny_container(dir, MIXQ_QT_INT8), *out = ts_path(dir, "hf");
    for (size_t limit = 1; limit <= 36; limit += 5) { /* 35 tensors: the last one ends the export */
        stop_after st = {0, 0, limit};
        mixq_export_hf_options o;
        mixq_export_hf_options_init(&o);
        o.shard_size = 50000;
        o.cancel = &st.flag;
        o.progress = progress_stop;
        o.progress_ctx = &st;
        mixq_error err;
        mixq_status s = mixq_export_hf(in, out, &o, &err);
        if (limit > 35) {
            cr_assert_eq(s, MIXQ_OK, "%s", err.message);
            cr_assert_eq(ts_dir_count(dir), 2);
            ts_rmtree(out);
            continue;
        }
        cr_assert_eq(s, MIXQ_E_CANCELLED, "limit %zu: %s", limit, err.message);
        cr_assert(!ts_exists(out));
        cr_assert_eq(ts_dir_count(dir), 1, "limit %zu: something was left beside the export", limit);
    }
    /* not cancelled: the directory, alone beside the container */
    mixq_error err;
    cr_assert_eq(mixq_export_hf(in, out, NULL, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(ts_dir_count(dir), 2);
    cr_assert_eq(mixq_export_hf(in, out, NULL, &err), MIXQ_E_EXISTS);
    cr_assert(strstr(err.message, "hf") && !strchr(err.message, '\n'));
    mixq_export_hf_options o;
    mixq_export_hf_options_init(&o);
    o.dtype = MIXQ_QT_INT8;
    cr_assert_eq(mixq_export_hf(in, out, &o, &err), MIXQ_E_INVALID_ARG);
    free(in);
    free(out);
    free(dir);
}
