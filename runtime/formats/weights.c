/* weights.c — binds the model's tensors to the layout's weight ids.
 *
 * Input: a model folder holding model.safetensors, or shards named by
 * model.safetensors.index.json, whose weight_map decides which shard each tensor
 * is read from; and the layout's (tensor name, shape, dtype the code reads).
 * Output: an lj_weights whose data[i] points into the read-only mapping, or at a
 * copy in owned[i] (unaligned, or F16/BF16 widened for f32 code). Every header is
 * checked (present, shape, dtype; the count of missing) before anything is bound,
 * and lj_weights_probe runs the same checks for the compiler before it compiles,
 * telling it each matrix's dtype. Refusals name the tensor; nothing escapes. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
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

static int cmp_entry(const void *a, const void *b) {
    const lj_shard_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->file > y->file) - (x->file < y->file);
}

static void map_free(lj_shard_entry *map, int n) {
    if (!map) return;
    for (int i = 0; i < n; i++) free(map[i].name);
    free(map);
}

/* The distinct values of vals[0..n) (borrowed), sorted, as owned copies into *out.
 * Caller owns *out; free with lj_shard_names_free(). */
static lorajit_status distinct_names(const char **vals, int n, const char *path, char ***out, int *n_out,
                                     lj_err *err) {
    const char **names = lj_calloc((size_t)n, sizeof *names);
    char **copy = NULL;
    int distinct = 0;
    lorajit_status s = LORAJIT_OK;
    if (!names) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    memcpy(names, vals, (size_t)n * sizeof *names);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0) names[distinct++] = names[i];
    if (distinct > WEIGHTS_MAX_SHARDS)
        s = lj_fail(err, LORAJIT_E_FORMAT, "%s: weight_map names %d shard files, over %d", path, distinct,
                    WEIGHTS_MAX_SHARDS);
    if (!s && !(copy = lj_calloc((size_t)distinct, sizeof *copy)))
        s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    for (int i = 0; !s && i < distinct; i++)
        if (!(copy[i] = lj_strdup(names[i]))) s = lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    free(names);
    if (s) {
        lj_shard_names_free(copy, distinct);
        return s;
    }
    *out = copy;
    *n_out = distinct;
    return LORAJIT_OK;
}

/* weight_map's entries (map, borrowed; shard names vals[k] of entry k) as (tensor,
 * number of its shard in shards[0..n_shards)), sorted by tensor. A tensor listed
 * for two different shards is refused by name: which copy Python would read depends
 * on the loader, so neither is taken. Caller owns *out; free with map_free(). */
static lorajit_status build_map(const cJSON *map, const char **vals, char **shards, int n_shards,
                                const char *path, lj_shard_entry **out, int *n_out, lj_err *err) {
    int n = cJSON_GetArraySize(map), k = 0;
    const cJSON *e;
    lj_shard_entry *m = lj_calloc((size_t)n, sizeof *m);
    if (!m) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(e, map) {
        char **at = bsearch(&vals[k], shards, (size_t)n_shards, sizeof *shards, cmp_str);
        LJ_ASSERT(at != NULL); /* shards are vals' distinct values */
        m[k].file = (int)(at - shards);
        if (!(m[k++].name = lj_strdup(e->string))) {
            map_free(m, n);
            return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
        }
    }
    qsort(m, (size_t)n, sizeof *m, cmp_entry);
    for (int i = 1; i < n; i++) {
        if (strcmp(m[i].name, m[i - 1].name) == 0 && m[i].file != m[i - 1].file) {
            lorajit_status s = lj_fail(err, LORAJIT_E_FORMAT,
                                       "%s: weight_map lists tensor \"%s\" twice, for shards \"%s\" and \"%s\"",
                                       path, m[i].name, shards[m[i - 1].file], shards[m[i].file]);
            map_free(m, n);
            return s;
        }
    }
    *out = m;
    *n_out = n;
    return LORAJIT_OK;
}

/* The index object j (borrowed): its distinct shard names, sorted, into *shards,
 * and, when map is not NULL, its weight_map as (tensor, shard number) into *map.
 * Caller owns *shards (free with lj_shard_names_free()) and *map (map_free()). On
 * failure both are NULL. */
static lorajit_status index_from_json(const cJSON *j, const char *path, char ***shards, int *n_shards,
                                      lj_shard_entry **map, int *n_map, lj_err *err) {
    lj_json_at top = {path, "", err}, at = {path, "weight_map.", err};
    const cJSON *wm = NULL, *e;
    const char **vals = NULL;
    int k = 0;
    lorajit_status s = lj_json_object(&top, j, "weight_map", LJ_JSON_REQUIRED, &wm);
    if (s) return s;
    int n = cJSON_GetArraySize(wm);
    if (n == 0) return lj_fail(err, LORAJIT_E_FORMAT, "%s: field \"weight_map\" is empty", path);
    if (!(vals = lj_calloc((size_t)n, sizeof *vals))) return lj_fail(err, LORAJIT_E_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(e, wm) {
        if ((s = lj_json_string(&at, e, NULL, LJ_JSON_REQUIRED, &vals[k]))) goto done;
        if (!shard_name_ok(vals[k])) {
            s = lj_fail(err, LORAJIT_E_FORMAT,
                        "%s: weight_map entry \"%s\": shard \"%s\" is not a plain file name", path,
                        e->string, vals[k]);
            goto done;
        }
        k++;
    }
    if ((s = distinct_names(vals, n, path, shards, n_shards, err))) goto done;
    if (map && (s = build_map(wm, vals, *shards, *n_shards, path, map, n_map, err))) {
        lj_shard_names_free(*shards, *n_shards);
        *shards = NULL;
    }
done:
    free(vals);
    return s;
}

/* Caller owns *shards; free with lj_shard_names_free(). On failure *shards is NULL. */
lorajit_status lj_shard_index_parse(const char *text, size_t len, const char *path, char ***shards,
                                    int *n_shards, lj_err *err) {
    *shards = NULL;
    *n_shards = 0;
    cJSON *j = NULL;
    lj_shard_entry *map = NULL;
    int n_map = 0;
    lorajit_status s = lj_json_parse_object(text, len, path, &j, err);
    if (!s) s = index_from_json(j, path, shards, n_shards, &map, &n_map, err);
    map_free(map, n_map);
    cJSON_Delete(j);
    return s;
}

/* Reads the index at index_path, opens each distinct shard once into w and keeps
 * its weight_map in w->map. */
static lorajit_status open_shards(lj_weights *w, const char *dir, const char *index_path,
                                  lj_err *err) {
    cJSON *j = NULL;
    char **names = NULL;
    int n = 0;
    lorajit_status s = lj_json_read(index_path, LJ_JSON_MAX_INDEX, &j, err);
    if (s) return s;
    if ((s = index_from_json(j, index_path, &names, &n, &w->map, &w->n_map, err))) goto done;
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

static int cmp_entry_name(const void *key, const void *e) {
    return strcmp((const char *)key, ((const lj_shard_entry *)e)->name);
}

/* Tensor name in w's files. With an index, only in the shard its weight_map names
 * for it: the index is authoritative, and a copy of the tensor in another shard is
 * never read (so two shards holding one name cannot make the first file win).
 * Without one, in the single file. NULL when absent; *f is the file searched, NULL
 * when the index does not list name. */
static const st_tensor *find_tensor(const lj_weights *w, const char *name, const st_file **f) {
    *f = NULL;
    if (!w->map) {
        *f = w->n_files ? w->files[0] : NULL;
        return st_find(*f, name);
    }
    const lj_shard_entry *e = bsearch(name, w->map, (size_t)w->n_map, sizeof *w->map, cmp_entry_name);
    if (!e) return NULL;
    *f = w->files[e->file];
    return st_find(*f, name);
}

/* The "not found" message for d->name: where (model.safetensors or the index)
 * and, for an index, the shard it names or the shards it lists. */
static lorajit_status not_found(const lj_weights *w, const char *name, const st_file *f, const char *where,
                                lj_err *err) {
    if (!w->map) return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: tensor \"%s\" not found", where, name);
    if (f)
        return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s: tensor \"%s\" not found (the weight_map of %s names "
                       "this shard for it)", f->path, name, where);
    char files[512];
    format_files(files, sizeof files, w);
    return lj_fail(err, LORAJIT_E_NOT_FOUND, "tensor \"%s\" not found in the shards of %s: its weight_map "
                   "does not list it (%s)", name, where, files);
}

/* Checks one weight's header entry against d: present where the files say
 * (find_tensor), dtype F32, F16 or BF16, shape d's; with compiled, also that 16-bit
 * code finds its own dtype. Headers only, no data read. *f and *t: where it is. */
static lorajit_status check_tensor(const lj_weights *w, const lj_weight_desc *d, const char *where,
                                   bool compiled, const st_file **f, const st_tensor **t, lj_err *err) {
    if (!(*t = find_tensor(w, d->name, f))) return not_found(w, d->name, *f, where, err);
    const char *path = (*f)->path;
    st_dtype have = (*t)->dtype;
    if (have != ST_F32 && have != ST_F16 && have != ST_BF16)
        return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                       "%s: tensor \"%s\": dtype %s is unsupported (F32, F16 or BF16 only)", path,
                       d->name, st_dtype_name(have));
    int64_t want[2] = {d->rows, d->cols};
    int want_ndim = d->cols == 0 ? 1 : 2;
    bool same = (*t)->ndim == want_ndim;
    for (int k = 0; same && k < want_ndim; k++) same = (*t)->shape[k] == want[k];
    if (!same) {
        char ws[64], gs[200];
        format_shape(ws, sizeof ws, want, want_ndim);
        format_shape(gs, sizeof gs, (*t)->shape, (*t)->ndim);
        return lj_fail(err, LORAJIT_E_SHAPE, "%s: tensor \"%s\": expected shape %s, got %s", path,
                       d->name, ws, gs);
    }
    /* F32 code takes any of the three (16-bit widened at bind); 16-bit code only its own. */
    if (compiled && d->dtype != LJ_DTYPE_F32 && have != lj_dtype_st(d->dtype))
        return lj_fail(err, LORAJIT_E_SHAPE, "%s: tensor \"%s\": the code was compiled for %s weights, "
                       "the file holds %s (compile again for these weights)", path, d->name,
                       st_dtype_name(lj_dtype_st(d->dtype)), st_dtype_name(have));
    return LORAJIT_OK;
}

/* check_tensor for every d[0..n), in order. The first failure is reported; when it
 * is a missing tensor, the message also says how many of the n are missing (a
 * config asking for 4096 layers of a 2-layer model says so at once). */
static lorajit_status check_all(const lj_weights *w, const lj_weight_desc *d, int n, const char *where,
                                bool compiled, lj_err *err) {
    lj_err first, later;
    int missing = 0;
    for (int i = 0; i < n; i++) {
        const st_file *f;
        const st_tensor *t;
        lorajit_status s = check_tensor(w, &d[i], where, compiled, &f, &t, missing ? &later : &first);
        if (s == LORAJIT_E_NOT_FOUND) missing++;
        else if (s && !missing) return lj_fail(err, s, "%s", first.msg);
    }
    if (!missing) return LORAJIT_OK;
    return lj_fail(err, LORAJIT_E_NOT_FOUND, "%s; %d of the %d tensors the model needs %s missing",
                   first.msg, missing, n, missing == 1 ? "is" : "are");
}

/* Points data[i] at weight d's tensor t of file f (checked by check_tensor), or
 * converts it into owned[i]. */
static lorajit_status bind_weight(lj_weights *w, int i, const lj_weight_desc *d, const st_file *f,
                                  const st_tensor *t, lj_err *err) {
    /* Read-only mapping: the compiled code never writes weights. */
    size_t n = (size_t)d->rows * (size_t)(d->cols ? d->cols : 1);
    w->dtype[i] = d->dtype;
    if (d->dtype != LJ_DTYPE_F32) {
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

/* True when dir holds PyTorch pickle checkpoints (pytorch_model.bin, *.bin shards, their index). */
static bool has_pickle(const char *dir) {
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        found = (n > 4 && !strcmp(e->d_name + n - 4, ".bin")) || strstr(e->d_name, "pytorch_model.bin") != NULL;
    }
    if (d) closedir(d);
    return found;
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
    if (stat(single, &st) != 0 && errno == ENOENT) {
        if (none) {
            *none = true;
            return LORAJIT_OK;
        }
        if (has_pickle(model_dir))
            return lj_fail(err, LORAJIT_E_UNSUPPORTED,
                           "%s: no model.safetensors, only PyTorch pickle checkpoints (*.bin), which lorajit does "
                           "not read (loading a pickle can run code); convert once, in Python: transformers."
                           "AutoModelForCausalLM.from_pretrained(D).save_pretrained(D, safe_serialization=True), "
                           "or safetensors' convert.py (huggingface.co/docs/safetensors/convert-weights)",
                           model_dir);
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
    if ((s = check_all(w, L->weights, w->n, where, true, err))) goto fail; /* headers, before any copy */
    for (int i = 0; i < w->n; i++) {
        const st_file *f;
        const st_tensor *t = find_tensor(w, L->weights[i].name, &f);
        if ((s = bind_weight(w, i, &L->weights[i], f, t, err))) goto fail;
    }
    *out = w;
    return LORAJIT_OK;
fail:
    lj_weights_free(w);
    return s;
}

lorajit_status lj_weights_probe(const char *model_dir, lj_weight_desc *want, int n, lj_err *err) {
    char paths[2][WEIGHTS_PATH_MAX];
    const char *where;
    bool none = false;
    for (int i = 0; i < n; i++) want[i].dtype = LJ_DTYPE_F32;
    lj_weights w = {0};
    lorajit_status s = open_files(&w, model_dir, paths, &where, &none, err);
    if (!s && !none) s = check_all(&w, want, n, where, false, err);
    for (int i = 0; !s && !none && i < n; i++) {
        const st_file *f;
        const st_tensor *t = find_tensor(&w, want[i].name, &f);
        if (want[i].cols && t->dtype == ST_F16) want[i].dtype = LJ_DTYPE_F16;
        if (want[i].cols && t->dtype == ST_BF16) want[i].dtype = LJ_DTYPE_BF16;
    }
    for (int i = 0; i < w.n_files; i++) st_close(w.files[i]);
    free(w.files);
    map_free(w.map, w.n_map);
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
    map_free(w->map, w->n_map);
    free(w);
}
