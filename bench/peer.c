/* peer.c — runs the PyTorch peer (bench/peer_torch.py) in a subprocess and merges
 * its figures into the bench result.
 *
 * Input: the spec JSON that bench.c wrote (same model and adapter files, same
 * prompts and repetitions). The peer runs with OPENBLAS_NUM_THREADS equal to
 * lorajit's OpenBLAS threads and torch.set_num_threads(1) (the fair setting in
 * machine-facts.md); its progress and errors go to stderr. Output: torch rows, versions,
 * and the agreement of its logits with lorajit's; or peer_ok = false and why. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"

/* Reads all of f. Caller owns the result; free with free(). */
static char *slurp(FILE *f) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t n; buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    if (buf) buf[len] = '\0';
    return buf;
}

static void unavailable(bench_result *r, const char *why, const char *detail) {
    r->peer_ok = false;
    snprintf(r->peer_reason, sizeof r->peer_reason, "%s%s", why, detail ? detail : "");
}

void bench_peer_run(bench_result *r, const char *python, const char *peer_path, const char *spec_path) {
    if (access(python, X_OK) != 0) return unavailable(r, "no python3 at ", python);
    if (access(peer_path, R_OK) != 0) return unavailable(r, "peer script not found: ", peer_path);
    char threads[64];
    snprintf(threads, sizeof threads, "OPENBLAS_NUM_THREADS=%d", r->threads);
    const char *const env[] = {threads, "OMP_NUM_THREADS=1", NULL};
    const char *const argv[] = {python, peer_path, spec_path, NULL};
    FILE *tmp = tmpfile(); /* its stdout; read back once it has exited */
    if (!tmp) return unavailable(r, "cannot make a temporary file for ", python);
    int rc = bench_run(argv, NULL, env, fileno(tmp), NULL);
    if (rc < 0) {
        fclose(tmp);
        return unavailable(r, "cannot start ", python);
    }
    rewind(tmp);
    char *out = slurp(tmp);
    fclose(tmp);
    /* the JSON object is the last line of stdout */
    char *last = out ? strrchr(out, '{') : NULL;
    while (last && last > out && last[-1] != '\n') last = memrchr(out, '{', (size_t)(last - out));
    cJSON *j = last ? cJSON_Parse(last) : NULL;
    free(out);
    if (!j) {
        snprintf(r->peer_reason, sizeof r->peer_reason, "the peer failed (exit %d); its messages are above", rc);
        r->peer_ok = false;
        return;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItem(j, "available"))) {
        const cJSON *why = cJSON_GetObjectItem(j, "reason");
        unavailable(r, cJSON_IsString(why) ? why->valuestring : "torch is not available", NULL);
        cJSON_Delete(j);
        return;
    }
    const cJSON *v = cJSON_GetObjectItem(j, "versions");
    const cJSON *tv = cJSON_GetObjectItem(v, "torch"), *pv = cJSON_GetObjectItem(v, "python"),
                *tt = cJSON_GetObjectItem(v, "torch_threads");
    snprintf(r->torch, sizeof r->torch, "%s", cJSON_IsString(tv) ? tv->valuestring : "?");
    snprintf(r->python, sizeof r->python, "%s", cJSON_IsString(pv) ? pv->valuestring : "?");
    r->torch_threads = cJSON_IsNumber(tt) ? tt->valueint : 0;

    bool complete = true;
    const cJSON *fwd = cJSON_GetObjectItem(j, "forward"), *agree = cJSON_GetObjectItem(j, "agree");
    for (int c = 0; c < BENCH_FWD_CONFIGS; c++) {
        bench_fwd_row *row = &r->fwd[c];
        const cJSON *cfg = row->peer ? cJSON_GetObjectItem(fwd, row->peer) : NULL;
        for (int t = 0; t < BENCH_TOKEN_SETS; t++) {
            char key[16];
            snprintf(key, sizeof key, "%d", r->tokens[t]);
            row->torch[t] = bench_stat_from_json(cJSON_GetObjectItem(cfg, key));
            complete &= row->torch[t].reps > 0;
        }
        const cJSON *a = row->peer ? cJSON_GetObjectItem(agree, row->peer) : NULL;
        if (cJSON_IsNumber(a) && strcmp(row->peer, row->name) == 0) row->agree = a->valuedouble;
    }
    const cJSON *sw = cJSON_GetObjectItem(j, "swap");
    for (int i = 0; i < BENCH_SWAPS; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_r%d", r->swap[i].targets, r->swap[i].rank);
        const cJSON *s = cJSON_GetObjectItem(sw, key), *bytes = cJSON_GetObjectItem(s, "bytes");
        r->swap[i].torch = bench_stat_from_json(s);
        complete &= r->swap[i].torch.reps > 0;
        if (cJSON_IsNumber(bytes) && (size_t)bytes->valuedouble != r->swap[i].bytes)
            fprintf(stderr, "\nlorajit bench: warning: torch swapped %.0f bytes for %s, lorajit %zu\n",
                    bytes->valuedouble, key, r->swap[i].bytes);
    }
    cJSON_Delete(j);
    r->peer_ok = complete;
    if (!complete)
        snprintf(r->peer_reason, sizeof r->peer_reason, "the peer's output lacks some figures");
}
