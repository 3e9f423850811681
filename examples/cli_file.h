/* cli_file.h — the files the command-line tools read and write themselves (a
 * script, a batch file, --logits, lorajit_gen's config.json and outputs): only
 * regular files, opened without blocking, so a directory, a FIFO or a device
 * named by mistake is refused at once with a message instead of read as nothing
 * or waited on forever. Uses only libc (cli_file.c). Every function writes why it
 * failed, naming `what` (the argument: "--logits", "script FILE") and the path,
 * into why[whylen]. */
#ifndef LORAJIT_CLI_FILE_H
#define LORAJIT_CLI_FILE_H

#include <stddef.h>
#include <stdio.h>

/* Opens path for reading; "-" is stdin when allow_stdin. Refuses what is not a
 * regular file (without blocking on a FIFO). Caller owns the result (fclose it
 * unless it is stdin); NULL on failure. */
FILE *cli_open_read(const char *what, const char *path, int allow_stdin, char *why, size_t whylen);
/* Creates or truncates path for writing, refusing (before truncating anything) an
 * existing path that is not a regular file. Caller owns the result; NULL on failure. */
FILE *cli_open_write(const char *what, const char *path, char *why, size_t whylen);
/* Checks, without opening it, that path can be a file to read (want_exists: it
 * exists and is a regular file) or to write (it is missing or a regular file):
 * for arguments checked before long work. 0, else -1. */
int cli_check_path(const char *what, const char *path, int want_exists, char *why, size_t whylen);

#endif /* LORAJIT_CLI_FILE_H */
