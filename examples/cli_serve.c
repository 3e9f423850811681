/* cli_serve.c — `lorajit serve`: takes the common options (--model, --artifact, the
 * schema options) as every verb does and hands the rest to the server (server/,
 * srv_serve). The server's engine computes on its own pool (a thread a core unless
 * --threads N), so OpenBLAS must run single-threaded (lorajit.h's threading notes)
 * and never add a second set of threads: when OPENBLAS_NUM_THREADS is unset
 * the command sets it to 1 and executes itself again, since OpenBLAS reads it only
 * when the library loads. Uses lorajit.h, cli.h and serve.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

int cmd_serve(int argc, char **argv) {
    cli_common c = {0};
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0;
    if (!rest) return 1;
    for (int i = 2; i < argc; i++) {
        int k = take_common(argc, argv, &i, &c);
        if (k < 0) { free(rest); return usage(); }
        if (k) continue;
        if (is_help(argv[i])) { free(rest); return help("serve"); }
        rest[n_rest++] = argv[i];
    }
    if (!c.model) {
        fprintf(stderr, "lorajit serve: --model is required\n");
        free(rest);
        return usage();
    }
    if (check_common(&c)) { free(rest); return 1; }
    if (!getenv("OPENBLAS_NUM_THREADS")) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "lorajit serve: warning: cannot re-execute with OPENBLAS_NUM_THREADS=1; "
                        "OpenBLAS keeps its own threads\n");
    }
    int rc = srv_serve(c.model, c.artifact, &c.opts, n_rest, rest);
    free(rest);
    return rc;
}
