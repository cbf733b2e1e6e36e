/*
 * tok_spm_load.c - parses a SentencePiece tokenizer.model (a protobuf
 * ModelProto, src/sentencepiece_model.proto of google/sentencepiece) by hand:
 * every varint and length is bounds-checked against its message.
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "tokenizer/tok_internal.h"

/* A protobuf message being read: [p, end). */
typedef struct pb {
    const uint8_t *p, *end;
} pb;

/* One field: its number, wire type, varint value or the bytes of a length-delimited/fixed value. */
typedef struct pb_field {
    uint32_t num, wire;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} pb_field;

static int pb_varint(pb *m, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (m->p >= m->end) return -1;
        uint8_t b = *m->p++;
        if (i == 9 && b > 1) return -1; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads the next field; 1 if one was read, 0 at the end, -1 if malformed. */
static int pb_next(pb *m, pb_field *f)
{
    uint64_t tag;
    if (m->p >= m->end) return 0;
    if (pb_varint(m, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    size_t left;
    switch (f->wire) {
    case 0: return pb_varint(m, &f->v) ? -1 : 1;
    case 1:
    case 5:
        f->len = f->wire == 1 ? 8 : 4;
        if ((size_t)(m->end - m->p) < f->len) return -1;
        f->data = m->p;
        for (size_t i = 0; i < f->len; i++) f->v |= (uint64_t)m->p[i] << (8 * i);
        m->p += f->len;
        return 1;
    case 2:
        if (pb_varint(m, &f->v)) return -1;
        left = (size_t)(m->end - m->p);
        if (f->v > left) return -1;
        f->data = m->p;
        f->len = (size_t)f->v;
        m->p += f->len;
        return 1;
    default: return -1; /* groups (3, 4) and unknown wire types */
    }
}

/* The model-wide settings found in trainer_spec and normalizer_spec. */
typedef struct spm_specs {
    uint64_t model_type;
    int byte_fallback, suffix;
    int64_t unk_id, bos_id, eos_id;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    size_t charsmap_len;
    char norm_name[64];
    const uint8_t *unk_surface; /* NULL: the default " \u2047 " */
    size_t unk_surface_len;
} spm_specs;

static int parse_trainer(const uint8_t *d, size_t n, spm_specs *s)
{
    pb m = {d, d + n};
    pb_field f;
    int r;
    while ((r = pb_next(&m, &f)) == 1) {
        if (f.num == 44 && f.wire == 2) {
            s->unk_surface = f.data;
            s->unk_surface_len = f.len;
        }
        if (f.wire != 0) continue;
        switch (f.num) {
        case 3: s->model_type = f.v; break;
        case 24: s->suffix = f.v != 0; break;
        case 35: s->byte_fallback = f.v != 0; break;
        case 40: s->unk_id = (int64_t)f.v; break;
        case 41: s->bos_id = (int64_t)f.v; break;
        case 42: s->eos_id = (int64_t)f.v; break;
        default: break;
        }
    }
    return r;
}

static int parse_normalizer(const uint8_t *d, size_t n, spm_specs *s)
{
    pb m = {d, d + n};
    pb_field f;
    int r;
    while ((r = pb_next(&m, &f)) == 1) {
        if (f.num == 1 && f.wire == 2) {
            size_t k = f.len < sizeof s->norm_name - 1 ? f.len : sizeof s->norm_name - 1;
            memcpy(s->norm_name, f.data, k);
            s->norm_name[k] = '\0';
        } else if (f.num == 2 && f.wire == 2) {
            s->charsmap_len = f.len;
        } else if (f.wire == 0 && f.num == 3) {
            s->add_dummy_prefix = f.v != 0;
        } else if (f.wire == 0 && f.num == 4) {
            s->remove_extra_ws = f.v != 0;
        } else if (f.wire == 0 && f.num == 5) {
            s->escape_ws = f.v != 0;
        }
    }
    return r;
}

/* Parses one SentencePiece message into entry id. */
static mixq_status parse_piece(mx_tok *tok, uint32_t id, const uint8_t *d, size_t n, mixq_error *err)
{
    pb m = {d, d + n};
    pb_field f;
    int r;
    const uint8_t *piece = NULL;
    size_t plen = 0;
    float score = 0;
    uint64_t type = SPT_NORMAL;
    while ((r = pb_next(&m, &f)) == 1) {
        if (f.num == 1 && f.wire == 2) {
            piece = f.data;
            plen = f.len;
        } else if (f.num == 2 && f.wire == 5) {
            uint32_t bits = (uint32_t)f.v;
            memcpy(&score, &bits, sizeof score);
        } else if (f.num == 3 && f.wire == 0) {
            type = f.v;
        }
    }
    if (r < 0) return mx_err(err, MIXQ_E_FORMAT, "%s: piece %u: malformed protobuf", tok->name, id);
    if (!piece || plen == 0) return mx_err(err, MIXQ_E_FORMAT, "%s: piece %u is empty", tok->name, id);
    size_t bad = tu_invalid_at((const char *)piece, plen);
    if (bad < plen || memchr(piece, '\0', plen))
        return mx_err(err, MIXQ_E_FORMAT, "%s: piece %u is not valid UTF-8 text (byte %zu)", tok->name, id,
                      bad < plen ? bad : (size_t)((const uint8_t *)memchr(piece, '\0', plen) - piece));
    if (type < SPT_NORMAL || type > SPT_BYTE)
        return mx_err(err, MIXQ_E_FORMAT, "%s: piece %u has unknown type %llu", tok->name, id,
                      (unsigned long long)type);
    if (score != score) return mx_err(err, MIXQ_E_FORMAT, "%s: piece %u has a NaN score", tok->name, id);
    if (tv_set(&tok->v, id, (const char *)piece, plen))
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    tok->score[id] = score;
    tok->type[id] = (uint8_t)type;
    return MIXQ_OK;
}

/* Checks a special id of the trainer spec: -1 (none) or a piece. */
static mixq_status special_id(mx_tok *tok, int64_t v, const char *what, int32_t *out, mixq_error *err)
{
    int32_t id = (int32_t)v;
    if (v != (int64_t)id || id < -1 || (id >= 0 && (uint32_t)id >= tok->v.n))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s %lld is not a piece id (vocabulary of %u)", tok->name, what,
                      (long long)v, tok->v.n);
    *out = id;
    return MIXQ_OK;
}

/* Collects the USER_DEFINED ids, longest piece first (matched greedily as whole symbols). */
static int collect_user(mx_tok *tok)
{
    for (uint32_t i = 0; i < tok->v.n; i++) tok->n_user += tok->type[i] == SPT_USER;
    if (!tok->n_user) return 0;
    tok->user = malloc(tok->n_user * sizeof *tok->user);
    if (!tok->user) return -1;
    size_t k = 0;
    for (uint32_t i = 0; i < tok->v.n; i++)
        if (tok->type[i] == SPT_USER) tok->user[k++] = (int32_t)i;
    for (size_t i = 1; i < k; i++) { /* insertion sort by length, descending; stable */
        int32_t x = tok->user[i];
        size_t j = i;
        while (j > 0 && tok->v.len[tok->user[j - 1]] < tok->v.len[x]) {
            tok->user[j] = tok->user[j - 1];
            j--;
        }
        tok->user[j] = x;
    }
    return 0;
}

mixq_status tok_spm_load(mx_tok *tok, const uint8_t *data, size_t len, mixq_error *err)
{
    pb m = {data, data + len};
    pb_field f;
    int r;
    uint64_t count = 0;
    spm_specs s = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2,
                   .add_dummy_prefix = 1, .remove_extra_ws = 1, .escape_ws = 1};
    while ((r = pb_next(&m, &f)) == 1) {
        if (f.num == 1 && f.wire == 2) count++;
        else if (f.num == 2 && f.wire == 2 && parse_trainer(f.data, f.len, &s) < 0) r = -1;
        else if (f.num == 3 && f.wire == 2 && parse_normalizer(f.data, f.len, &s) < 0) r = -1;
        if (r < 0) break;
    }
    if (r < 0) return mx_err(err, MIXQ_E_FORMAT, "%s: malformed protobuf (not a SentencePiece model)", tok->name);
    if (count == 0) return mx_err(err, MIXQ_E_FORMAT, "%s: no pieces (not a SentencePiece model)", tok->name);
    if (count > MX_TOK_MAX_VOCAB)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %llu pieces, more than the limit of %u", tok->name,
                      (unsigned long long)count, MX_TOK_MAX_VOCAB);
    if (s.model_type != 1 && s.model_type != 2)
        return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: model type %llu is not supported (only BPE and unigram)",
                      tok->name, (unsigned long long)s.model_type);
    if (s.charsmap_len > 0)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: normalizer \"%s\" has a precompiled charsmap: only identity normalization is supported",
                      tok->name, mx_shown(s.norm_name, (char[MX_SHOWN_BUF]){0}));
    if (s.suffix)
        return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported", tok->name);

    if (s.unk_surface) {
        if (s.unk_surface_len >= sizeof tok->unk_surface ||
            tu_invalid_at((const char *)s.unk_surface, s.unk_surface_len) < s.unk_surface_len ||
            memchr(s.unk_surface, '\0', s.unk_surface_len))
            return mx_err(err, MIXQ_E_FORMAT, "%s: unk_surface is not UTF-8 text of at most %zu bytes", tok->name,
                          sizeof tok->unk_surface - 1);
        memcpy(tok->unk_surface, s.unk_surface, s.unk_surface_len);
        tok->unk_surface[s.unk_surface_len] = '\0';
    } else {
        strcpy(tok->unk_surface, " \xE2\x81\x87 ");
    }
    tok->spm_unigram = s.model_type == 1;
    tok->byte_fallback = s.byte_fallback;
    tok->add_dummy_prefix = s.add_dummy_prefix;
    tok->remove_extra_ws = s.remove_extra_ws;
    tok->escape_ws = s.escape_ws;
    if (tv_init(&tok->v, (uint32_t)count) || !(tok->score = calloc(count, sizeof *tok->score)) ||
        !(tok->type = calloc(count, 1)))
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory for %llu pieces", tok->name, (unsigned long long)count);

    m.p = data;
    uint32_t id = 0;
    while (pb_next(&m, &f) == 1) {
        if (f.num != 1 || f.wire != 2) continue;
        mixq_status st = parse_piece(tok, id++, f.data, f.len, err);
        if (st) return st;
    }
    int64_t dup = tv_index(&tok->v);
    if (dup == -2) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    if (dup >= 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: piece %lld \"%s\" appears twice", tok->name, (long long)dup,
                      mx_shown(tok->v.text.p + tok->v.off[dup], (char[MX_SHOWN_BUF]){0}));

    tok->unk = -1;
    /* as sentencepiece's unigram model: the maximum starts at FLT_MIN (the smallest positive float, not the most
       negative), so with all scores negative a user-defined piece scores about -0.1 */
    tok->min_score = FLT_MAX;
    tok->max_score = FLT_MIN;
    for (uint32_t i = 0; i < tok->v.n; i++) {
        if (tok->type[i] == SPT_UNKNOWN && tok->unk < 0) tok->unk = (int32_t)i;
        if (tok->type[i] == SPT_UNUSED) tok->has_unused = 1;
        if (tok->type[i] == SPT_NORMAL || tok->type[i] == SPT_USER) {
            const char *p = tok->v.text.p + tok->v.off[i];
            uint32_t chars = 0;
            for (uint32_t k = 0; k < tok->v.len[i]; k++) chars += ((unsigned char)p[k] & 0xC0) != 0x80;
            if (chars > tok->max_piece_chars) tok->max_piece_chars = chars;
        }
        if (tok->type[i] != SPT_NORMAL) continue;
        if (tok->score[i] < tok->min_score) tok->min_score = tok->score[i];
        if (tok->score[i] > tok->max_score) tok->max_score = tok->score[i];
    }
    if (tok->unk < 0) return mx_err(err, MIXQ_E_FORMAT, "%s: no piece of type UNKNOWN (<unk>)", tok->name);
    mixq_status st = special_id(tok, s.bos_id, "bos_id", &tok->bos, err);
    if (!st) st = special_id(tok, s.eos_id, "eos_id", &tok->eos, err);
    if (st) return st;
    if (collect_user(tok)) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    return MIXQ_OK;
}
