/* serve.h — server/'s one entry point, for the `lorajit` command (examples/cli_serve.c):
 * `lorajit serve` once the CLI has read the model and schema options. */
#ifndef LORAJIT_SERVE_H
#define LORAJIT_SERVE_H

#include "lorajit.h"

/* Runs the server until SIGINT or SIGTERM: model (a model folder), artifact (NULL, or
 * an artifact folder opened with model's weights), opts (the schema options; borrowed),
 * argv[0..argc) the server's own options (see srv_serve_usage). Exit status: 0 after a
 * signal, 1 when it could not start, 2 on a usage error. */
int srv_serve(const char *model, const char *artifact, const lorajit_options *opts, int argc, char **argv);
/* The server's options, for `lorajit serve --help`. Static text. */
const char *srv_serve_usage(void);

#endif /* LORAJIT_SERVE_H */
