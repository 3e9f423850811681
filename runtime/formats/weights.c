/* weights.c — binds the model's tensors to the layout's weight ids.
 *
 * Input: a model folder holding model.safetensors, or the shards named by
 * model.safetensors.index.json ("weight_map": tensor -> shard file), and the
 * layout's list of (tensor name, shape, the dtype the code reads). Output: an
 * lj_weights whose data[i] is [rows, cols] of that dtype for weight id i: a
 * pointer into the read-only mapping when the file holds it aligned, else a copy
 * in owned[i] (f32 code widens F16/BF16 here; 16-bit code needs its own dtype: a
 * decode step then reads half the bytes). lj_weights_probe tells the compiler
 * which dtype each tensor has, before it compiles. A missing tensor,
 * another dtype or another shape is refused by name; nothing escapes on failure. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "formats.h"

#define WEIGHTS_MAX_SHARDS 10000
#define WEIGHTS_PATH_MAX 4096

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard name must be a plain file name in the model folder. */
static bool shard_name_ok(const char *s) {
    return s[0] != '\0' && strchr(s, '/') == NULL && strchr(s, '\\') == NULL &&
           strstr(s, "..") == NULL;
}

/* Opens path into w->files[w->n_files++]. Pass index (or NULL) for the message. */
static lorajit_status open_one(lj_weights *w, const char *path, const char *index, lj_err *err) {
    st_file *f;
    lorajit_status s = st_open(path, &f, err);
    if (s) {
        if (index && err) lj_fail(err, s, "%s (shard listed in %s)", err->msg, index);
        return s;
    }
    w->files[w->n_files++] = f;
    return LORAJIT_OK;
}

void lj_shard_names_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The distinct shard names of the index object j (borrowed), sorted. Caller owns
 * *shards; free with lj_shard_names_free(). On failure *shards is NULL. */
static lorajit_status shards_from_json(const cJSON *j, const char *path, char ***shards, int *n_shards,
                                       lj_err *err) {
    lj_json_at top = {path, "", err}, at = {path, "weight_map.", err};
    const cJSON *map = NULL, *e;
    const char **names = NULL;
    char **out = NULL;
    int distinct = 0, k = 0;
    lorajit_status s = lj_json_object(&top, j, "weight_map", LJ_JSON_REQUIRED, &map);
    if (s) return s;
    int n = cJSON_GetArraySize(map);
    if (n == 0) return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"weight_map\" is empty", path);
    if (!(names = lj_calloc((size_t)n, sizeof *names))) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(e, map) {
        if ((s = lj_json_string(&at, e, NULL, LJ_JSON_REQUIRED, &names[k]))) goto done;
        if (!shard_name_ok(names[k])) {
            s = lj_fail(err, LORAJIT_E_FORMAT,
                        "%s: weight_map entry \"%s\": shard \"%s\" is not a plain file name", path,
                        e->string, names[k]);
            goto done;
        }
        k++;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0) names[distinct++] = names[i];
    if (distinct > WEIGHTS_MAX_SHARDS) {
        s = lj_fail(err, LORAJIT_E_FORMAT, "%s: weight_map names %d shard files, over %d", path,
                    distinct, WEIGHTS_MAX_SHARDS);
        goto done;
    }
    if (!(out = lj_calloc((size_t)distinct, sizeof *out))) {
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < distinct; i++) {
        if (!(out[i] = lj_strdup(names[i]))) {
            s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    *shards = out;
    *n_shards = distinct;
    out = NULL;
done:
    lj_shard_names_free(out, distinct);
    free(names);
    return s;
}

/* Caller owns *shards; free with lj_shard_names_free(). On failure *shards is NULL. */
lorajit_status lj_shard_index_parse(const char *text, size_t len, const char *path, char ***shards,
                                    int *n_shards, lj_err *err) {
    *shards = NULL;
    *n_shards = 0;
    cJSON *j = NULL;
    lorajit_status s = lj_json_parse_object(text, len, path, &j, err);
    if (!s) s = shards_from_json(j, path, shards, n_shards, err);
    cJSON_Delete(j);
    return s;
}

/* Reads the index at index_path and opens each distinct shard once into w. */
static lorajit_status open_shards(lj_weights *w, const char *dir, const char *index_path,
                                  lj_err *err) {
    cJSON *j = NULL;
    char **names = NULL;
    int n = 0;
    lorajit_status s = lj_json_read(index_path, LJ_JSON_MAX_INDEX, &j, err);
    if (s) return s;
    if ((s = shards_from_json(j, index_path, &names, &n, err))) goto done;
    if (!(w->files = lj_calloc((size_t)n, sizeof *w->files))) {
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", index_path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        char path[WEIGHTS_PATH_MAX];
        if ((s = lj_path_join(path, sizeof path, dir, names[i], err))) goto done;
        if ((s = open_one(w, path, index_path, err))) goto done;
    }
done:
    lj_shard_names_free(names, n);
    cJSON_Delete(j);
    return s;
}

/* Writes "[a, b, ...]" into buf. */
static void format_shape(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* Names every open file into buf, for a "not found" message. */
static void format_files(char *buf, size_t cap, const lj_weights *w) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < w->n_files && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", w->files[i]->path);
}

/* Finds weight id i by name in the open files, checks it, and points or converts. */
static lorajit_status bind_weight(lj_weights *w, int i, const lj_weight_desc *d, const char *where,
                                  lj_err *err) {
    const st_tensor *t = NULL;
    const st_file *f = NULL;
    for (int k = 0; k < w->n_files && !t; k++) {
        f = w->files[k];
        t = st_find(f, d->name);
    }
    if (!t) {
        if (w->n_files == 1 && strcmp(where, w->files[0]->path) == 0)
            return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: tensor \"%s\" not found", where, d->name);
        char files[512];
        format_files(files, sizeof files, w);
        return lj_fail(err, LORAJIT_E_NOT_FOUND, "tensor \"%s\" not found in the shards of %s (%s)",
                       d->name, where, files);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: tensor \"%s\": dtype %s is unsupported (F32, F16 or BF16 only)", f->path,
                       d->name, st_dtype_name(t->dtype));
    int64_t want[2] = {d->rows, d->cols};
    int want_ndim = d->cols == 0 ? 1 : 2;
    bool same = t->ndim == want_ndim;
    for (int k = 0; same && k < want_ndim; k++) same = t->shape[k] == want[k];
    if (!same) {
        char ws[64], gs[200];
        format_shape(ws, sizeof ws, want, want_ndim);
        format_shape(gs, sizeof gs, t->shape, t->ndim);
        return lj_fail(err, LORAJIT_E_SHAPE, "%s: tensor \"%s\": expected shape %s, got %s", f->path,
                       d->name, ws, gs);
    }
    /* Read-only mapping: the compiled code never writes weights. F32 code takes any
     * of the three (16-bit widened here); 16-bit code takes only its own dtype. */
    size_t n = (size_t)d->rows * (size_t)(d->cols ? d->cols : 1);
    w->dtype[i] = d->dtype;
    if (d->dtype != LJ_DTYPE_F32) {
        st_dtype want = lj_dtype_st(d->dtype);
        if (t->dtype != want)
            return lj_fail(err, LORAJIT_E_SHAPE, "%s: tensor \"%s\": the code was compiled for %s weights, "
                           "the file holds %s (compile again for these weights)", f->path, d->name,
                           st_dtype_name(want), st_dtype_name(t->dtype));
        if ((uintptr_t)t->data % 2 == 0) {
            w->data[i] = t->data;
            return LORAJIT_OK;
        }
        if (!(w->owned[i] = lj_malloc(n * 2))) /* unaligned: an aligned 16-bit copy */
            return lj_fail(err, LORAJIT_E_NOMEM, "%s: tensor \"%s\": out of memory copying %zu values",
                           f->path, d->name, n);
        memcpy(w->owned[i], t->data, n * 2);
        w->data[i] = w->owned[i];
        return LORAJIT_OK;
    }
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        w->data[i] = t->data;
        return LORAJIT_OK;
    }
    if (!(w->owned[i] = lj_malloc(n * sizeof(float))))
        return lj_fail(err, LORAJIT_E_NOMEM, "%s: tensor \"%s\": out of memory converting %zu values",
                       f->path, d->name, n);
    w->data[i] = w->owned[i];
    return st_to_f32(f, t, (float *)w->owned[i], err);
}

/* Opens model_dir's weight files into w->files: the shards of
 * model.safetensors.index.json when present, else model.safetensors. *where names
 * what was opened (for messages: it points into the caller's paths buffer,
 * [2][WEIGHTS_PATH_MAX]). With neither file, *none is set (when none is not NULL)
 * and LORAJIT_OK returned; without `none` that is an error. */
static lorajit_status open_files(lj_weights *w, const char *model_dir, char paths[2][WEIGHTS_PATH_MAX],
                                 const char **where, bool *none, lj_err *err) {
    char *index = paths[0], *single = paths[1];
    lorajit_status s;
    if ((s = lj_path_join(index, WEIGHTS_PATH_MAX, model_dir, "model.safetensors.index.json", err)) ||
        (s = lj_path_join(single, WEIGHTS_PATH_MAX, model_dir, "model.safetensors", err)))
        return s;
    struct stat st;
    if (stat(index, &st) == 0) {
        *where = index;
        return open_shards(w, model_dir, index, err);
    }
    if (errno != ENOENT) return lj_fail(err, LORAJIT_E_IO, "%s: cannot stat: %s", index, strerror(errno));
    *where = single;
    if (none && stat(single, &st) != 0 && errno == ENOENT) {
        *none = true;
        return LORAJIT_OK;
    }
    if (!(w->files = lj_calloc(1, sizeof *w->files)))
        return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", model_dir);
    return open_one(w, single, NULL, err);
}

/* Caller owns *out; free with lj_weights_free(). On failure *out is NULL. */
lorajit_status lj_weights_open(const char *model_dir, const lj_layout *L, lj_weights **out,
                               lj_err *err) {
    *out = NULL;
    char paths[2][WEIGHTS_PATH_MAX];
    const char *where = model_dir;
    lorajit_status s;
    lj_weights *w = lj_calloc(1, sizeof *w);
    if (!w) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", model_dir);
    w->n = L->n_weights;
    if (!(w->data = lj_calloc((size_t)w->n, sizeof *w->data)) ||
        !(w->dtype = lj_calloc((size_t)w->n, sizeof *w->dtype)) ||
        !(w->owned = lj_calloc((size_t)w->n, sizeof *w->owned))) {
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", model_dir);
        goto fail;
    }
    if ((s = open_files(w, model_dir, paths, &where, NULL, err))) goto fail;
    for (int i = 0; i < w->n; i++)
        if ((s = bind_weight(w, i, &L->weights[i], where, err))) goto fail;
    *out = w;
    return LORAJIT_OK;
fail:
    lj_weights_free(w);
    return s;
}

lorajit_status lj_weights_probe(const char *model_dir, const char *const *names, int n, int32_t *dtypes,
                                lj_err *err) {
    char paths[2][WEIGHTS_PATH_MAX];
    const char *where;
    bool none = false;
    for (int i = 0; i < n; i++) dtypes[i] = LJ_DTYPE_F32;
    lj_weights w = {0};
    lorajit_status s = open_files(&w, model_dir, paths, &where, &none, err);
    for (int i = 0; !s && !none && i < n; i++) {
        const st_tensor *t = NULL;
        for (int k = 0; k < w.n_files && !t; k++) t = st_find(w.files[k], names[i]);
        if (t && t->dtype == ST_F16) dtypes[i] = LJ_DTYPE_F16;
        if (t && t->dtype == ST_BF16) dtypes[i] = LJ_DTYPE_BF16;
    }
    for (int i = 0; i < w.n_files; i++) st_close(w.files[i]);
    free(w.files);
    return s;
}

st_dtype lj_dtype_st(int32_t d) {
    return d == LJ_DTYPE_F16 ? ST_F16 : d == LJ_DTYPE_BF16 ? ST_BF16 : ST_F32;
}

void lj_weights_free(lj_weights *w) {
    if (!w) return;
    if (w->owned)
        for (int i = 0; i < w->n; i++) free(w->owned[i]);
    free(w->owned);
    free(w->data);
    free(w->dtype);
    for (int i = 0; i < w->n_files; i++) st_close(w->files[i]);
    free(w->files);
    free(w);
}
