/* bench_swap.c — section 2: adapter swaps against a copy of the same bytes.
 *
 * bench_swaps: on the forward model (dim 1024, 8 layers, F32) with r_max-64 slots on
 * all seven projections, f32 adapters of three ranks on attention and on all seven:
 * lorajit_load_adapter and lorajit_hotswap_adapter from files in the page cache, the
 * slot write from memory (bench_hook.h), and memcpy of the adapter's f32 bytes,
 * round-robin. bench_swap16: on the decode model (TinyLlama's shape), a BF16 rank-16
 * adapter on all seven projections (issue 16's 25 MB case) loaded and hotswapped into
 * f32 slots and into BF16 slots, against memcpy of its file bytes and of its f32 bytes
 * (what f32 slots receive), round-robin. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_hook.h" /* the one internal hook: slot writes from memory */

typedef struct swap_arg {
    lorajit_engine *e;
    const char *dir[2];
    int flip;
    lj_bench_slots *slots; /* both adapters parsed, slot buffers of their own */
    void *src, *dst;
    size_t bytes;
} swap_arg;

static void load_once(void *p) {
    swap_arg *a = p;
    bench_must(lorajit_load_adapter(a->e, "bench_load", a->dir[0]), a->e, "load");
}
static void load_undo(void *p) {
    swap_arg *a = p;
    bench_must(lorajit_delete_adapter(a->e, "bench_load"), a->e, "delete");
}
static void hotswap_once(void *p) {
    swap_arg *a = p;
    a->flip ^= 1;
    bench_must(lorajit_hotswap_adapter(a->e, "bench_swap", a->dir[a->flip]), a->e, "hotswap");
}
static void slot_write_once(void *p) {
    swap_arg *a = p;
    a->flip ^= 1;
    lj_bench_slots_write(a->slots, a->flip);
}
static void copy_once(void *p) {
    swap_arg *a = p;
    memcpy(a->dst, a->src, a->bytes);
}

/* src and dst of bytes each, touched (no first-touch faults in the timed copies). */
static void copy_bufs(swap_arg *a, size_t bytes) {
    a->bytes = bytes;
    a->src = malloc(bytes), a->dst = malloc(bytes);
    if (!a->src || !a->dst) bench_die("out of memory");
    memset(a->src, 1, bytes), memset(a->dst, 2, bytes);
}

void bench_swaps(bench_result *r, int reps, lorajit_engine *e, char adapters[BENCH_SWAPS][2][PATH_MAX]) {
    for (int i = 0; i < BENCH_SWAPS; i++) {
        bench_swap_row *row = &r->swap[i];
        swap_arg a = {.e = e, .dir = {adapters[i][0], adapters[i][1]}};
        char msg[1024];
        size_t bytes;
        if (lj_bench_slots_open(e, a.dir, &a.slots, &bytes, msg, sizeof msg)) bench_die("%s", msg);
        row->bytes = bytes;
        bench_progress("swap: %s rank %d (%.2f MiB)", row->targets, row->rank, row->bytes / 1048576.0);
        copy_bufs(&a, bytes);
        bench_must(lorajit_load_adapter(e, "bench_swap", a.dir[0]), e, "load");
        bench_job jobs[4] = {
            {NULL, copy_once, NULL, &a, &row->copy},
            {NULL, load_once, load_undo, &a, &row->load_file},
            {NULL, hotswap_once, NULL, &a, &row->hotswap_file},
            {NULL, slot_write_once, NULL, &a, &row->hotswap_mem},
        };
        for (int j = 0; j < 4; j++) bench_measure_jobs(&jobs[j], 1, reps); /* steady loops, as the peer times copy_ */
        bench_must(lorajit_delete_adapter(e, "bench_swap"), e, "delete");
        free(a.src), free(a.dst);
        lj_bench_slots_free(a.slots);
    }
}

void bench_swap16(bench_result *r, const char *exe_dir, int reps) {
    bench_decode_result *d = &r->dec;
    bench_swap16_result *s = &r->swap16;
    char dir[2][PATH_MAX], args[256], path[PATH_MAX + 64];
    bench_progress("swap: a BF16 rank-16 adapter on %s's model, into f32 and BF16 slots", d->dtype);
    for (int k = 0; k < 2; k++) {
        bench_fmt(dir[k], PATH_MAX, "%s/bf16_r16_%c", d->adapter_root, 'a' + k);
        bench_fmt(args, sizeof args, "--r 16 --alpha 32 --dtype bf16 --seed %d --targets "
                  "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", 400 + k);
        bench_generate(exe_dir, "adapter", dir[k], d->model_dir, args);
    }
    bench_fmt(path, sizeof path, "%s/adapter_model.safetensors", dir[0]);
    s->file_bytes = (size_t)bench_st_data_bytes(path);
    s->f32_bytes = 2 * s->file_bytes;
    swap_arg cp_file = {0}, cp_f32 = {0}, a[2];
    copy_bufs(&cp_file, s->file_bytes);
    copy_bufs(&cp_f32, s->f32_bytes);
    bench_job jobs[2 + 2 * 2] = {
        {NULL, copy_once, NULL, &cp_file, &s->copy_file},
        {NULL, copy_once, NULL, &cp_f32, &s->copy_f32},
    };
    lorajit_engine *e[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) { /* k 0: f32 slots, 1: bf16 slots */
        lorajit_options o = {.max_rank = 16, .targets = "all-linear", .max_adapters = 2, .max_tokens = 16,
                             .max_batch = 1, .max_seq_len = 64, .lora_dtype = k ? "bf16" : "f32"};
        bench_must(lorajit_engine_open(&e[k], d->model_dir, &o), e[k], d->model_dir);
        a[k] = (swap_arg){.e = e[k], .dir = {dir[0], dir[1]}};
        bench_must(lorajit_load_adapter(e[k], "bench_swap", dir[0]), e[k], dir[0]);
        jobs[2 + 2 * k] = (bench_job){NULL, load_once, load_undo, &a[k], &s->load[k]};
        jobs[3 + 2 * k] = (bench_job){NULL, hotswap_once, NULL, &a[k], &s->hotswap[k]};
    }
    bench_measure_jobs(jobs, 6, reps);
    for (int k = 0; k < 2; k++) lorajit_engine_free(e[k]);
    free(cp_file.src), free(cp_file.dst), free(cp_f32.src), free(cp_f32.dst);
}
