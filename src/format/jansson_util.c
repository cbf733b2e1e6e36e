/* jansson_util.c - telling jansson's "out of memory" from malformed JSON (see jansson_util.h). */
#include "common/json_fast.h"
#include "format/jansson_util.h"

bool mx_json_oom(const json_error_t *je, const char *text, size_t len)
{
    if (json_error_code(je) == json_error_out_of_memory || je->text[0] == '\0') return true;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
    if (i == len || (text[i] != '{' && text[i] != '[')) return false; /* jansson wants an object or array */
    jf_error e;
    jf_doc *d = jf_parse(text, len, &e);
    if (d) {
        jf_free(d);
        return true; /* well-formed: jansson failed for memory */
    }
    return e.code == JF_E_NOMEM;
}
