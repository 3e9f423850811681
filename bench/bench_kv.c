/* bench_kv.c — section 9 of `lorajit bench`: the paged KV cache (issue 14). On a small
 * model whose K and V take 8 KiB a position (dim 256, 4 layers, 4 KV heads of 64, f32
 * cache), max_seq_len 256:
 *   memory  16 sequences prefilled with 192 tokens in blocks of 16, in a pool of 25 MiB
 *           (the old [max_batch, max_seq_len] cache took 32 MiB): bytes of the blocks in
 *           use against the bytes those tokens' K and V need (goal: <= 1.2x);
 *   decode  a batch-16 decode step from position 192 with blocks of 16 against blocks
 *           of 256 (one block a sequence: the old contiguous layout), round-robin in
 *           one run; both must give the same logits bit for bit. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"

enum { BK_SEQS = 16, BK_PROMPT = 192, BK_SEQ_LEN = 256, BK_BLOCK = 16, BK_MB = 25, BK_VOCAB = 256,
       BK_POS_BYTES = 2 * 4 * 256 * 4 };

typedef struct bk_arg {
    lorajit_engine *e;
    int seqs[BK_SEQS];
    int32_t tokens[BK_SEQS];
    float *logits; /* [BK_SEQS, BK_VOCAB] */
} bk_arg;

static void step(void *p) {
    bk_arg *a = p;
    bench_must(lorajit_decode(a->e, a->seqs, a->tokens, BK_SEQS, a->logits), a->e, "decode");
}

static lorajit_engine *open_prefilled(const char *model, int block, int mb) {
    lorajit_options o = {.targets = "none", .max_batch = BK_SEQS, .max_seq_len = BK_SEQ_LEN, .kv_block_size = block,
                         .kv_cache_mb = mb};
    lorajit_engine *e = NULL;
    bench_must(lorajit_engine_open(&e, model, &o), e, model);
    int32_t prompt[BK_PROMPT];
    for (int i = 0; i < BK_PROMPT; i++) prompt[i] = (int32_t)((i * 131 + 7) % BK_VOCAB);
    for (int q = 0; q < BK_SEQS; q++) bench_must(lorajit_seq_prefill(e, q, prompt, BK_PROMPT, NULL), e, "prefill");
    return e;
}

void bench_kv(bench_result *r, const char *exe_dir, const char *work) {
    bench_kv_result *k = &r->kv;
    char model[4096];
    bench_progress("paged KV cache: %d sequences of %d tokens", BK_SEQS, BK_PROMPT);
    bench_fmt(model, sizeof model, "%s/models/kv_d256_l4", work);
    bench_generate(exe_dir, "model", model, NULL, "--dim 256 --hidden 512 --layers 4 --heads 4 --kv-heads 4 "
                   "--vocab 256 --max-pos 256 --seed 3");
    *k = (bench_kv_result){.seqs = BK_SEQS, .tokens = BK_PROMPT, .seq_len = BK_SEQ_LEN, .block = BK_BLOCK,
                           .budget_mb = BK_MB};
    lorajit_engine *m = open_prefilled(model, BK_BLOCK, BK_MB);
    int64_t free_blocks = 0, total = 0;
    size_t bytes = 0;
    bench_must(lorajit_kv_blocks(m, &free_blocks, &total, NULL, &bytes), m, "kv_blocks");
    k->used_bytes = (double)(total - free_blocks) * (double)bytes;
    k->pool_bytes = (double)total * (double)bytes;
    k->need_bytes = (double)BK_SEQS * BK_PROMPT * BK_POS_BYTES;
    k->old_bytes = (double)BK_SEQS * BK_SEQ_LEN * BK_POS_BYTES;
    lorajit_engine_free(m);

    bk_arg a[2] = {{.e = open_prefilled(model, BK_BLOCK, 0)}, {.e = open_prefilled(model, BK_SEQ_LEN, 0)}};
    for (int j = 0; j < 2; j++) {
        if (!(a[j].logits = malloc(sizeof(float) * BK_SEQS * BK_VOCAB))) bench_die("out of memory");
        for (int q = 0; q < BK_SEQS; q++) a[j].seqs[q] = q, a[j].tokens[q] = (int32_t)(q * 17 % BK_VOCAB);
    }
    bench_job jobs[2] = {{NULL, step, NULL, &a[0], &k->paged}, {NULL, step, NULL, &a[1], &k->flat}};
    bench_measure_jobs(jobs, 2, r->quick ? 8 : 32); /* positions 192 .. 224 at most */
    k->same_logits = !memcmp(a[0].logits, a[1].logits, sizeof(float) * BK_SEQS * BK_VOCAB);
    for (int j = 0; j < 2; j++) {
        lorajit_engine_free(a[j].e);
        free(a[j].logits);
    }
}

void bench_kv_print(const bench_result *r, FILE *f) {
    const bench_kv_result *k = &r->kv;
    if (!k->paged.reps) return;
    fprintf(f, "\n9. Paged KV cache: %d sequences of %d tokens, blocks of %d positions, max_seq_len %d\n", k->seqs,
            k->tokens, k->block, k->seq_len);
    fprintf(f, "   blocks in use %.2f MiB for %.2f MiB of K/V = %.3f x (goal <= 1.2); pool %.2f MiB (kv_cache_mb %d); "
            "the old cache took %.2f MiB\n", k->used_bytes / 1048576, k->need_bytes / 1048576,
            k->used_bytes / k->need_bytes, k->pool_bytes / 1048576, k->budget_mb, k->old_bytes / 1048576);
    fprintf(f, "   decode step, batch %d: blocks of %d %.3f ms, one block a sequence (the old layout) %.3f ms: "
            "%.2f x; logits %s\n", k->seqs, k->block, k->paged.median, k->flat.median, k->paged.median / k->flat.median,
            k->same_logits ? "bit for bit the same" : "DIFFER");
}

struct cJSON *bench_kv_json(const bench_result *r) {
    const bench_kv_result *k = &r->kv;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "sequences", k->seqs);
    cJSON_AddNumberToObject(j, "tokens", k->tokens);
    cJSON_AddNumberToObject(j, "block_size", k->block);
    cJSON_AddNumberToObject(j, "max_seq_len", k->seq_len);
    cJSON_AddNumberToObject(j, "kv_cache_mb", k->budget_mb);
    cJSON_AddNumberToObject(j, "used_bytes", k->used_bytes);
    cJSON_AddNumberToObject(j, "need_bytes", k->need_bytes);
    cJSON_AddNumberToObject(j, "used_over_need", k->need_bytes > 0 ? k->used_bytes / k->need_bytes : 0);
    cJSON_AddNumberToObject(j, "pool_bytes", k->pool_bytes);
    cJSON_AddNumberToObject(j, "old_layout_bytes", k->old_bytes);
    cJSON_AddItemToObject(j, "decode_paged_ms", bench_stat_json(k->paged));
    cJSON_AddItemToObject(j, "decode_one_block_ms", bench_stat_json(k->flat));
    cJSON_AddNumberToObject(j, "paged_over_one_block", k->flat.median > 0 ? k->paged.median / k->flat.median : 0);
    cJSON_AddBoolToObject(j, "same_logits", k->same_logits);
    return j;
}
