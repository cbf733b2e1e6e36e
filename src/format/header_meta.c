/* header_meta.c - the file-level metadata object of the container header (FORMAT.md §3.2). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "format/header_meta.h"
#include "mixq_config.h"

json_t *mxf_header_meta_new(mixq_qtype type, unsigned group_size, bool quantize_1d, bool search)
{
    json_t *meta = json_object(), *src = json_object(), *files = json_array(), *opts;
    if (!meta || !src || !files) goto fail;
    unsigned g = group_size == MIXQ_GROUP_PER_ROW ? 0 : group_size;
    opts = json_pack("{s:s,s:i,s:b,s:b}", "type", mixq_qtype_name(type), "group_size", (int)g, "quantize_1d",
                     quantize_1d, "search", search);
    if (!opts) goto fail;
    if (json_object_set_new(meta, "mixq_version", json_string(MIXQ_VERSION_STRING)) ||
        json_object_set_new(meta, "source_metadata", src) || json_object_set_new(meta, "source_files", files) ||
        json_object_set_new(meta, "options", opts)) {
        json_decref(meta);
        return NULL;
    }
    return meta;
fail:
    json_decref(meta);
    json_decref(src);
    json_decref(files);
    return NULL;
}

int mxf_header_meta_add_source_metadata(json_t *meta, const char *key, const char *value)
{
    json_t *src = json_object_get(meta, "source_metadata");
    return src ? json_object_set_new(src, key, json_string(value)) : -1;
}

int mxf_header_meta_add_source_file(json_t *meta, const char *path, uint64_t size)
{
    json_t *files = json_object_get(meta, "source_files");
    char *copy = strdup(path), *b = copy ? mx_utf8_lossy(basename(copy)) : NULL; /* any file name: valid JSON */
    free(copy);
    json_t *o = b && files ? json_pack("{s:s,s:I}", "name", b, "size", (json_int_t)size) : NULL;
    free(b);
    return o ? json_array_append_new(files, o) : -1;
}
