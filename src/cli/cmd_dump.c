/* cmd_dump.c - `mixq dump FILE [--json] [--tensor NAME]`: what a container holds. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli_util.h"
#include "common/utf8.h"
#include "commands.h"

static const char usage[] =
    "Usage: mixq dump FILE [--json] [--tensor NAME]\n"
    "\n"
    "Lists the tensors of a container: name, shape, quant_type, group size,\n"
    "stored bytes, bits per weight and xxh3 checksum, then the tensors, weights,\n"
    "bytes and bits per weight of each type (as 'mixq plan'), totals (source\n"
    "size, output size, compression, bits per weight) and the model files stored\n"
    "in it (config.json, tokenizer, ...). Checksums are listed, not checked: use\n"
    "'mixq verify'. In --json, file_offset is an absolute file offset and a\n"
    "section's offset is relative to its tensor's file_offset.\n"
    "\n"
    "Options:\n"
    "      --json          print one JSON object instead of a table\n"
    "  -t, --tensor NAME   show only this tensor, with its sections\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed file or no such tensor; 2 usage error;\n"
    "3 the file cannot be read.\n";

typedef struct totals {
    uint64_t source, stored, elements;
} totals;

static void add_totals(totals *t, const mixq_tensor_info *in)
{
    t->source += in->n_elements * cli_dtype_size(in->source_dtype);
    t->stored += in->nbytes;
    t->elements += in->n_elements;
}

static double bpw_of(uint64_t bytes, uint64_t elems)
{
    return elems ? (double)bytes * 8.0 / (double)elems : 0.0;
}

/* The JSON description of one tensor; NULL if out of memory (never a partial one). */
static json_t *tensor_json(const mixq_tensor *t, int with_sections)
{
    mixq_tensor_info in;
    mixq_tensor_get_info(t, &in);
    json_t *shape = json_array();
    int bad = !shape;
    for (unsigned i = 0; i < in.ndim && !bad; i++)
        bad |= json_array_append_new(shape, json_integer((json_int_t)in.shape[i])) != 0;
    if (bad) {
        json_decref(shape);
        return NULL;
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, in.checksum);
    json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:i,s:b,s:I,s:I,s:f,s:s}", "name", in.name, "shape", shape,
                          "source_dtype", in.source_dtype, "quant_type", in.quant_type, "group_size",
                          (int)in.group_size, "symmetric", in.symmetric, "file_offset", (json_int_t)in.offset, "bytes",
                          (json_int_t)in.nbytes, "bits_per_weight", in.bits_per_weight, "xxh3", hex);
    if (o && with_sections) {
        json_t *secs = json_object();
        bad = !secs;
        for (int k = 0; k < MIXQ_SECTION_COUNT && !bad; k++) {
            mixq_section sec;
            if (mixq_tensor_section(t, (mixq_section_kind)k, &sec) != MIXQ_OK) continue;
            bad |= json_object_set_new(secs, mixq_section_name((mixq_section_kind)k),
                                       json_pack("{s:I,s:I,s:I,s:I}", "offset", (json_int_t)(sec.offset - in.offset),
                                                 "file_offset", (json_int_t)sec.offset, "length", (json_int_t)sec.size,
                                                 "row_stride", (json_int_t)sec.row_stride)) != 0;
        }
        if (bad || json_object_set_new(o, "sections", secs)) {
            if (bad) json_decref(secs);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* The stored files (FORMAT.md §3.3) as a JSON array: name, size, stored_size, compression, xxh3. */
static json_t *files_json(const mixq_file *f)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < mixq_file_count(f); i++) {
        mixq_stored_file sf;
        mixq_file_at(f, i, &sf);
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, sf.checksum);
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:s,s:s}", "name", sf.name, "size", (json_int_t)sf.size,
                                             "stored_size", (json_int_t)sf.stored_size, "compression",
                                             sf.compression, "xxh3", hex));
    }
    return arr;
}

/* The stored files as a table after the tensors' (nothing if there are none). */
static void print_files(const mixq_file *f)
{
    size_t n = mixq_file_count(f);
    if (!n) return;
    printf("\nstored files: %zu\n%-24s  %10s  %10s  %-11s  %-16s\n", n, "name", "bytes", "stored", "compression",
           "xxh3");
    for (size_t i = 0; i < n; i++) {
        mixq_stored_file sf;
        mixq_file_at(f, i, &sf);
        printf("%-24s  %10llu  %10llu  %-11s  %016" PRIx64 "\n", sf.name, (unsigned long long)sf.size,
               (unsigned long long)sf.stored_size, sf.compression, sf.checksum);
    }
}

static int dump_json(const char *path, mixq_file *f, const char *only)
{
    json_t *root;
    if (only) {
        root = tensor_json(mixq_find(f, only), 1);
    } else {
        size_t hlen;
        const char *htext = mixq_header_json(f, &hlen);
        json_t *header = json_loadb(htext, hlen, 0, NULL);
        if (!header) { /* mixq_open validated it: only memory can fail here */
            cli_error("dump", "%s: out of memory reading the header", cli_safe(path));
            return EXIT_SYSTEM;
        }
        json_t *meta = json_object_get(header, "metadata");
        json_t *arr = json_array();
        totals t = {0, 0, 0};
        for (size_t i = 0; arr && i < mixq_tensor_count(f); i++) {
            const mixq_tensor *tn = mixq_tensor_at(f, i);
            mixq_tensor_info in;
            mixq_tensor_get_info(tn, &in);
            add_totals(&t, &in);
            json_t *o = tensor_json(tn, 0);
            json_t *ee = json_object_get(json_array_get(json_object_get(header, "tensors"), i), "estimated_error");
            if (o && json_is_number(ee) && json_object_set(o, "estimated_error", ee)) {
                json_decref(o);
                o = NULL;
            }
            if (!o || json_array_append_new(arr, o)) { /* never a list with a tensor missing */
                json_decref(arr);
                arr = NULL;
            }
        }
        char *lp = mx_utf8_lossy(path); /* a file name need not be UTF-8; JSON must be */
        if (!lp) {
            json_decref(arr);
            arr = NULL;
        }
        root = !arr ? NULL : json_pack("{s:s,s:I,s:i,s:O,s:o,s:{s:i,s:I,s:I,s:I,s:f,s:f}}", "file", lp, "file_size",
                         (json_int_t)mixq_file_size(f), "format_version", MIXQ_FORMAT_VERSION,
                         "metadata", meta ? meta : json_null(), "tensors", arr, "totals", "tensors",
                         (int)mixq_tensor_count(f), "source_bytes", (json_int_t)t.source, "stored_bytes",
                         (json_int_t)t.stored, "file_bytes", (json_int_t)mixq_file_size(f), "compression",
                         t.stored ? (double)t.source / (double)t.stored : 0.0, "bits_per_weight",
                         bpw_of(t.stored, t.elements));
        free(lp);
        json_decref(header);
        if (root && json_object_set_new(root, "files", files_json(f))) {
            json_decref(root);
            root = NULL;
        }
    }
    if (!root) {
        cli_error("dump", "%s: out of memory", cli_safe(path));
        return EXIT_SYSTEM;
    }
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!s) {
        cli_error("dump", "%s: out of memory", cli_safe(path));
        return EXIT_SYSTEM;
    }
    puts(s);
    free(s);
    return EXIT_OK;
}

static void print_one(const mixq_tensor *t)
{
    mixq_tensor_info in;
    mixq_tensor_get_info(t, &in);
    char shape[256];
    printf("name          %s\n", cli_safe(in.name));
    printf("shape         %s (%llu rows of %llu)\n", cli_shape(&in, shape, sizeof shape),
           (unsigned long long)in.rows, (unsigned long long)in.row_length);
    printf("source dtype  %s\n", cli_safe(in.source_dtype));
    printf("quant_type    %s%s\n", cli_safe(in.quant_type), in.quantized ? (in.symmetric ? " (symmetric)" : " (asymmetric)") : "");
    if (in.quantized) {
        if (in.group_size) printf("group size    %u\n", in.group_size);
        else printf("group size    per row (%llu)\n", (unsigned long long)in.row_length);
    }
    printf("file offset   %llu\n", (unsigned long long)in.offset);
    printf("bytes         %llu\n", (unsigned long long)in.nbytes);
    printf("bits/weight   %.3f\n", in.bits_per_weight);
    printf("xxh3          %016" PRIx64 "\n", in.checksum);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        mixq_section sec;
        if (mixq_tensor_section(t, (mixq_section_kind)k, &sec) != MIXQ_OK) continue;
        printf("section       %-12s at +%llu, %llu bytes, %llu per row\n", mixq_section_name((mixq_section_kind)k),
               (unsigned long long)(sec.offset - in.offset), (unsigned long long)sec.size,
               (unsigned long long)sec.row_stride);
    }
}

static int dump_table(const char *path, mixq_file *f)
{
    size_t n = mixq_tensor_count(f), w = 4;
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        size_t l = strlen(cli_safe(in.name));
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    /* a planned container records each tensor's estimated squared error and the plan */
    size_t hlen;
    const char *htext = mixq_header_json(f, &hlen);
    json_t *header = json_loadb(htext, hlen, 0, NULL);
    if (!header) { /* mixq_open validated it: only memory can fail here; never drop columns silently */
        cli_error("dump", "%s: out of memory reading the header", cli_safe(path));
        return EXIT_SYSTEM;
    }
    printf("%s: mixq container, format %d, %zu tensors\n\n", cli_safe(path), MIXQ_FORMAT_VERSION, n);
    json_t *hts = json_object_get(header, "tensors"), *plan = json_object_get(json_object_get(header, "metadata"), "plan");
    int has_est = 0;
    for (size_t i = 0; i < json_array_size(hts); i++)
        has_est |= json_is_number(json_object_get(json_array_get(hts, i), "estimated_error"));
    printf("%-*s  %-18s  %-5s  %-5s  %12s  %6s  %-16s%s\n", (int)w, "name", "shape", "type", "group", "bytes", "bpw",
           "xxh3", has_est ? "  est.sq.err" : "");
    totals t = {0, 0, 0};
    cli_by_type bt = {0};
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        add_totals(&t, &in);
        char shape[256], group[16], sp[48];
        cli_by_type_add(&bt, cli_type_spec(in.qtype, in.group_size, sp, sizeof sp), in.n_elements, in.nbytes);
        if (!in.quantized) snprintf(group, sizeof group, "-");
        else if (in.group_size == 0) snprintf(group, sizeof group, "row");
        else snprintf(group, sizeof group, "%u", in.group_size);
        printf("%-*s  %-18s  %-5s  %5s  %12llu  %6.3f  %016" PRIx64, (int)w, cli_safe(in.name),
               cli_shape(&in, shape, sizeof shape), cli_safe(in.quant_type), group, (unsigned long long)in.nbytes,
               in.bits_per_weight, in.checksum);
        json_t *ee = json_object_get(json_array_get(hts, i), "estimated_error");
        if (has_est && json_is_number(ee)) printf("  %11.4g", json_number_value(ee));
        else if (has_est) printf("  %11s", "-");
        putchar('\n');
    }
    cli_by_type_print(&bt);
    char a[32], b[32], c[32];
    printf("\ntotal: %zu tensors, %llu weights; source %s, stored %s, file %s; %.2fx smaller; %.3f bits per weight\n",
           n, (unsigned long long)t.elements, cli_bytes(t.source, a, sizeof a), cli_bytes(t.stored, b, sizeof b),
           cli_bytes(mixq_file_size(f), c, sizeof c), t.stored ? (double)t.source / (double)t.stored : 0.0,
           bpw_of(t.stored, t.elements));
    if (json_is_object(plan)) {
        json_t *bpw = json_object_get(plan, "target_bpw"), *size = json_object_get(plan, "target_size");
        json_t *est = json_object_get(plan, "estimated_error");
        const char *strategy = json_string_value(json_object_get(plan, "strategy"));
        printf("plan: strategy %s", strategy ? cli_safe(strategy) : "?");
        if (json_is_number(bpw)) printf(", target %.4g bits per weight", json_number_value(bpw));
        if (json_is_integer(size)) printf(", target %lld bytes", (long long)json_integer_value(size));
        if (json_is_string(json_object_get(plan, "weights")))
            printf(", weights %s", cli_safe(json_string_value(json_object_get(plan, "weights"))));
        if (json_is_number(est)) printf(", estimated squared error %.6g", json_number_value(est));
        json_t *ms = json_object_get(plan, "measure_sample");
        if (json_is_number(est) && json_is_integer(ms) && json_integer_value(ms) > 0)
            printf(" (errors of tensors over %lld elements estimated from a sample of rows)",
                   (long long)json_integer_value(ms));
        putchar('\n');
        json_t *pk = json_object_get(plan, "predicted_kld"), *mo = json_object_get(plan, "measurement");
        const char *mf = json_string_value(json_object_get(mo, "file"));
        const char *mh = json_string_value(json_object_get(mo, "xxh3"));
        if (json_is_number(pk) && mf && mh) /* a plan with measured weights (mixq measure) */
            printf("measurement: %s (xxh3 %s), predicted KLD %.6g\n", cli_safe(mf), cli_safe(mh),
                   json_number_value(pk));
    }
    json_t *im = json_object_get(json_object_get(header, "metadata"), "imatrix");
    if (json_is_object(im)) {
        const char *file = json_string_value(json_object_get(im, "file"));
        const char *hash = json_string_value(json_object_get(im, "xxh3"));
        const char *wt = json_string_value(json_object_get(im, "weighting"));
        json_t *ds = json_object_get(im, "datasets");
        printf("imatrix: %s (xxh3 %s), %lld chunks of %lld tokens, %lld entries, weighting %s", file ? file : "?",
               hash ? hash : "?", (long long)json_integer_value(json_object_get(im, "chunk_count")),
               (long long)json_integer_value(json_object_get(im, "chunk_size")),
               (long long)json_integer_value(json_object_get(im, "entries")), wt ? wt : "?");
        for (size_t i = 0; i < json_array_size(ds); i++) {
            const char *d = json_string_value(json_array_get(ds, i));
            if (d) printf("%s%s", i ? ", " : "; dataset ", d);
        }
        putchar('\n');
    }
    json_decref(header);
    print_files(f);
    return EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
    enum { OPT_JSON = 1000 };
    static const struct option longopts[] = {{"json", no_argument, NULL, OPT_JSON},
                                              {"tensor", required_argument, NULL, 't'},
                                              {"help", no_argument, NULL, 'h'},
                                              {NULL, 0, NULL, 0}};
    int json = 0, c;
    const char *only = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case 't': only = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("dump", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_unknown_option("dump", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("dump", "expected exactly one FILE");
    const char *path = argv[optind];
    mixq_error err;
    mixq_file *f = mixq_open(path, 0, &err);
    if (!f) {
        cli_lib_error("dump", &err);
        return cli_exit_code(err.code);
    }
    int rc;
    if (only && !mixq_find(f, only)) {
        cli_error("dump", "%s: no tensor named \"%s\"; run 'mixq dump %s' to list them", cli_safe(path), cli_safe(only),
                  cli_safe(path));
        rc = EXIT_BAD_DATA;
    } else if (json) {
        rc = dump_json(path, f, only);
    } else if (only) {
        print_one(mixq_find(f, only));
        rc = EXIT_OK;
    } else {
        rc = dump_table(path, f);
    }
    mixq_close(f);
    return rc;
}
