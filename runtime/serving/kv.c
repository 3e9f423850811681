/* kv.c — the paged KV cache: one pool of fixed-size blocks (block_size positions of
 * K, and of V, for every layer) from which sequences take blocks as they grow and
 * to which they give them back when they are reset. A sequence's block table lists
 * its blocks in position order; the compiled code finds position j of a layer
 * through it (ctx.h). The pool is sized in bytes (kv_cache_mb: a 16-bit kv_dtype
 * fits twice the blocks), or by default to what every sequence's max_seq_len
 * positions take. Taking blocks for several sequences is all or nothing, under one
 * lock, so a call that cannot get them all fails with LORAJIT_E_FULL before anything
 * runs. */
#include <stdlib.h>
#include <string.h>

#include "serving.h"

int64_t lj_kv_blocks_for(const lj_kv *kv, int64_t positions) {
    return (positions + kv->block_size - 1) / kv->block_size;
}

lorajit_status lj_kv_init(lj_kv *kv, const lj_config *cfg, const lj_schema *sc, lj_err *err) {
    memset(kv, 0, sizeof *kv);
    int64_t bs = sc->kv_block_size ? sc->kv_block_size : LJ_KV_BLOCK_DEFAULT; /* 0: a layout made by hand */
    int64_t kv_dim = cfg->n_kv_heads * cfg->head_size;
    LJ_ASSERT(bs >= 1 && (bs & (bs - 1)) == 0 && sc->max_batch >= 1);
    kv->block_size = bs;
    kv->max_batch = sc->max_batch;
    kv->per_seq = lj_kv_blocks_for(kv, sc->seq_len);
    if (kv_dim > (INT64_MAX / 8) / bs / cfg->n_layers)
        return lj_fail(err, LORAJIT_E_ARG, "KV cache: a block of %lld positions overflows (kv_block_size)",
                       (long long)bs);
    kv->block_elems = cfg->n_layers * bs * kv_dim;
    kv->elem_bytes = lj_kv_dtype_bytes(sc->kv_dtype);
    int64_t bytes = 2 * kv->block_elems * kv->elem_bytes; /* K and V */
    int64_t all = kv->per_seq * sc->max_batch, n = all;           /* every sequence full */
    if (sc->kv_cache_mb > 0) {
        n = ((int64_t)sc->kv_cache_mb << 20) / bytes;
        if (n < 1)
            return lj_fail(err, LORAJIT_E_ARG, "options.kv_cache_mb %d holds no KV cache block (one block of "
                           "%lld positions takes %lld bytes: raise kv_cache_mb or lower kv_block_size)",
                           sc->kv_cache_mb, (long long)bs, (long long)bytes);
        if (n > all) n = all; /* more could never be used */
    }
    if ((uint64_t)n > SIZE_MAX / (uint64_t)bytes)
        return lj_fail(err, LORAJIT_E_ARG, "KV cache size overflows (%d sequences of %lld positions): lower "
                       "--max-seq-len / --max-batch (options.max_seq_len, options.max_batch) or set "
                       "--kv-cache-mb", sc->max_batch, (long long)sc->seq_len);
    int64_t fwd = lj_kv_blocks_for(kv, sc->max_tokens);
    if (n <= INT32_MAX) { /* more blocks than an int32 table can name cannot be had anyway */
        kv->n_blocks = (int32_t)n;
        kv->key_pool = lj_calloc((size_t)n * (size_t)kv->block_elems, (size_t)kv->elem_bytes);
        kv->value_pool = kv->key_pool ? lj_calloc((size_t)n * (size_t)kv->block_elems, (size_t)kv->elem_bytes) : NULL;
        kv->free_list = lj_malloc(sizeof *kv->free_list * (size_t)n);
        kv->table = lj_malloc(sizeof *kv->table * (size_t)(kv->per_seq * sc->max_batch));
        kv->held = lj_calloc((size_t)sc->max_batch, sizeof *kv->held);
        kv->identity = lj_malloc(sizeof *kv->identity * (size_t)fwd);
    }
    if (!kv->key_pool || !kv->value_pool || !kv->free_list || !kv->table || !kv->held || !kv->identity)
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory: KV cache of %lld blocks of %lld positions (%.1f GiB "
                       "for %d sequences of %lld positions); lower --max-seq-len / --max-batch "
                       "(options.max_seq_len, options.max_batch) or set --kv-cache-mb", (long long)n,
                       (long long)bs, (double)n * (double)bytes / (1 << 30), sc->max_batch,
                       (long long)sc->seq_len); /* lj_kv_free frees the pieces */
    for (int32_t i = 0; i < kv->n_blocks; i++) kv->free_list[i] = kv->n_blocks - 1 - i; /* block 0 on top */
    kv->n_free = kv->n_blocks;
    for (int64_t i = 0; i < fwd; i++) kv->identity[i] = (int32_t)i;
    kv->forward_elems = fwd * kv->block_elems;
    if (pthread_mutex_init(&kv->lock, NULL) != 0)
        return lj_fail(err, LORAJIT_E_NOMEM, "KV cache: no mutex left");
    kv->ready = true;
    return LORAJIT_OK;
}

void lj_kv_free(lj_kv *kv) {
    if (!kv) return;
    if (kv->ready) pthread_mutex_destroy(&kv->lock);
    free(kv->key_pool);
    free(kv->value_pool);
    free(kv->free_list);
    free(kv->table);
    free(kv->held);
    free(kv->identity);
    memset(kv, 0, sizeof *kv);
}

/* Sequence s holds exactly `want` blocks (fewer go back to the pool, more come
 * from it). Under kv->lock; the caller checked that the pool has enough. */
static void resize_locked(lj_kv *kv, int s, int64_t want) {
    int32_t *row = kv->table + (int64_t)s * kv->per_seq;
    while (kv->held[s] > want) kv->free_list[kv->n_free++] = row[--kv->held[s]];
    while (kv->held[s] < want) row[kv->held[s]++] = kv->free_list[--kv->n_free];
}

lorajit_status lj_kv_reserve(lj_kv *kv, const int *seqs, const int64_t *positions, int n, bool exact,
                             const char *what, lj_err *err) {
    pthread_mutex_lock(&kv->lock);
    int64_t take = 0, give = 0;
    for (int i = 0; i < n; i++) {
        int64_t want = lj_kv_blocks_for(kv, positions[i]), held = kv->held[seqs[i]];
        LJ_ASSERT(want <= kv->per_seq);
        if (want > held) take += want - held;
        else if (exact) give += held - want;
    }
    if (take > kv->n_free + give) {
        int s = seqs[0]; /* name the first sequence that needs blocks */
        int64_t more = 0;
        for (int i = 0; i < n && more <= 0; i++) {
            s = seqs[i];
            more = lj_kv_blocks_for(kv, positions[i]) - kv->held[s];
        }
        int32_t used = kv->n_blocks - kv->n_free;
        pthread_mutex_unlock(&kv->lock);
        return lj_fail(err, LORAJIT_E_FULL, "%s: KV cache full: sequence %d needs %lld more blocks of %lld "
                       "positions (the call needs %lld), and %d of the pool's %d blocks are in use, %d free "
                       "(options.kv_cache_mb; lorajit_seq_reset gives a sequence's blocks back)", what, s,
                       (long long)more, (long long)kv->block_size, (long long)(take - give), used,
                       kv->n_blocks, kv->n_free);
    }
    for (int i = 0; i < n; i++) /* shrink first, so that the blocks given back can be taken */
        if (exact && lj_kv_blocks_for(kv, positions[i]) < kv->held[seqs[i]])
            resize_locked(kv, seqs[i], lj_kv_blocks_for(kv, positions[i]));
    for (int i = 0; i < n; i++)
        if (lj_kv_blocks_for(kv, positions[i]) > kv->held[seqs[i]])
            resize_locked(kv, seqs[i], lj_kv_blocks_for(kv, positions[i]));
    pthread_mutex_unlock(&kv->lock);
    return LORAJIT_OK;
}

void lj_kv_trim(lj_kv *kv, int seq, int64_t positions) {
    pthread_mutex_lock(&kv->lock);
    int64_t want = lj_kv_blocks_for(kv, positions);
    if (want < kv->held[seq]) resize_locked(kv, seq, want);
    pthread_mutex_unlock(&kv->lock);
}

const int32_t *lj_kv_table(const lj_kv *kv, int seq) { return kv->table + (int64_t)seq * kv->per_seq; }

void lj_kv_gather(const lj_kv *kv, const int *seqs, int n, int64_t width, int32_t *out) {
    for (int i = 0; i < n; i++) {
        int64_t held = kv->held[seqs[i]];
        memcpy(out + i * width, lj_kv_table(kv, seqs[i]), sizeof *out * (size_t)(held < width ? held : width));
    }
}

void lj_kv_count(lj_kv *kv, int64_t *free_blocks, int64_t *total_blocks) {
    pthread_mutex_lock(&kv->lock);
    if (free_blocks) *free_blocks = kv->n_free;
    if (total_blocks) *total_blocks = kv->n_blocks;
    pthread_mutex_unlock(&kv->lock);
}
