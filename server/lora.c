/* lora.c — the adapters `lorajit serve` knows by name (--adapter, vLLM's
 * /v1/load_lora_adapter, and ROOT/NAME just in time with --adapter-dir ROOT).
 * A load checks the path (inside ROOT when set: no `..` component, and its real path,
 * symlinks resolved, under ROOT's), registers it with the engine's adapter cache
 * (lorajit_register_adapter: loaded into a slot when a request names it, evicted
 * when slots run short) and validates the folder with lorajit_check_adapter, which
 * takes no slot and keeps the parsed copy, so the first request's load is a copy;
 * a folder that fails the check is unregistered. Requests hold a reference; an
 * unload waits for them to end, so no running request ever loses its adapter midway. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "server.h"

typedef struct lora_entry {
    char name[SRV_MAX_NAME + 1];
    char *path;                  /* owned, the real path */
    long created;
    int refs;                    /* requests using it now */
    int unloading;
    struct lora_entry *next;
} lora_entry;

struct srv_lora {
    lorajit_engine *e;           /* borrowed */
    char *root;                  /* owned real path, or NULL */
    pthread_mutex_t mu;          /* the list */
    pthread_cond_t released;     /* a reference was dropped */
    pthread_mutex_t load_mu;     /* one load at a time */
    lora_entry *list;
};

srv_lora *srv_lora_new(lorajit_engine *e, const char *root, char *why, size_t cap) {
    srv_lora *l = calloc(1, sizeof *l);
    if (!l) return snprintf(why, cap, "out of memory"), NULL;
    l->e = e;
    struct stat st;
    if (root && (!(l->root = realpath(root, NULL)) || stat(l->root, &st) || !S_ISDIR(st.st_mode))) {
        snprintf(why, cap, "--adapter-dir %s: %s", root, l->root ? "not a folder" : strerror(errno));
        free(l->root);
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->load_mu, NULL);
    pthread_cond_init(&l->released, NULL);
    return l;
}

void srv_lora_free(srv_lora *l) {
    if (!l) return;
    for (lora_entry *x = l->list, *next; x; x = next) {
        next = x->next;
        free(x->path);
        free(x);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->load_mu);
    pthread_cond_destroy(&l->released);
    free(l->root);
    free(l);
}

/* The entry named name that is not being unloaded (l->mu held). */
static lora_entry *find(srv_lora *l, const char *name) {
    for (lora_entry *x = l->list; x; x = x->next)
        if (!x->unloading && !strcmp(x->name, name)) return x;
    return NULL;
}

/* path -> its real path (caller frees) when it is a folder allowed by ROOT; else NULL
 * with why. Relative paths are relative to ROOT when set. */
static char *resolve(const srv_lora *l, const char *path, char *why, size_t cap) {
    if (l->root) {
        for (const char *p = path; *p;) { /* no ".." component at all */
            size_t k = strcspn(p, "/");
            if (k == 2 && p[0] == '.' && p[1] == '.') {
                snprintf(why, cap, "lora_path '%s': '..' is not allowed (adapters must be under --adapter-dir)", path);
                return NULL;
            }
            p += k + (p[k] == '/');
        }
    }
    char joined[PATH_MAX];
    if (snprintf(joined, sizeof joined, "%s%s%s", l->root && path[0] != '/' ? l->root : "",
                 l->root && path[0] != '/' ? "/" : "", path) >= (int)sizeof joined) {
        snprintf(why, cap, "lora_path: too long");
        return NULL;
    }
    char *real = realpath(joined, NULL);
    struct stat st;
    if (!real || stat(real, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "lora_path '%s': %s", path, real ? "not a folder" : strerror(errno));
        free(real);
        return NULL;
    }
    size_t n = l->root ? strlen(l->root) : 0;
    if (l->root && (strncmp(real, l->root, n) || (real[n] != '/' && strcmp(l->root, "/")))) {
        snprintf(why, cap, "lora_path '%s' is outside --adapter-dir (it resolves to a folder outside the root)", path);
        free(real);
        return NULL;
    }
    return real;
}

int srv_lora_load(srv_lora *l, const char *name, const char *path, char *why, size_t cap) {
    if (!srv_name_ok(name)) return snprintf(why, cap, "lora_name '%s' is not a valid adapter name", name), 400;
    char *real = resolve(l, path, why, cap);
    if (!real) return 400;
    lora_entry *x = calloc(1, sizeof *x);
    if (!x) {
        free(real);
        return snprintf(why, cap, "out of memory"), 503;
    }
    snprintf(x->name, sizeof x->name, "%s", name);
    x->path = real;
    x->created = (long)time(NULL);
    pthread_mutex_lock(&l->load_mu);
    pthread_mutex_lock(&l->mu);
    int taken = find(l, name) != NULL;
    pthread_mutex_unlock(&l->mu);
    int status = 200;
    if (taken) {
        snprintf(why, cap, "The lora adapter '%s' has already been loaded.", name);
        status = 400;
    }
    if (status == 200 && lorajit_register_adapter(l->e, name, real) != LORAJIT_OK) {
        snprintf(why, cap, "lora_name '%s': %s", name, lorajit_errmsg(l->e));
        status = 400;
    } else if (status == 200) { /* no request can name it yet: it is not in the list */
        lorajit_status st = lorajit_check_adapter(l->e, name, real);
        if (st != LORAJIT_OK) {
            snprintf(why, cap, "lora_path '%s': %s", path, lorajit_errmsg(l->e));
            status = st == LORAJIT_E_NOMEM ? 503 : 400;
            lorajit_delete_adapter(l->e, name); /* registered only: forgotten */
        }
    }
    if (status == 200) {
        pthread_mutex_lock(&l->mu);
        lora_entry **p = &l->list;
        while (*p) p = &(*p)->next;
        *p = x;
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_unlock(&l->load_mu);
    if (status != 200) {
        free(x->path);
        free(x);
    }
    return status;
}

int srv_lora_unload(srv_lora *l, const char *name, char *why, size_t cap) {
    pthread_mutex_lock(&l->mu);
    lora_entry *x = find(l, name);
    if (!x) {
        pthread_mutex_unlock(&l->mu);
        return snprintf(why, cap, "The lora adapter '%s' cannot be found.", name), 404;
    }
    x->unloading = 1; /* new requests no longer find it */
    while (x->refs > 0) pthread_cond_wait(&l->released, &l->mu);
    for (lora_entry **p = &l->list; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            break;
        }
    pthread_mutex_unlock(&l->mu);
    lorajit_status st = lorajit_delete_adapter(l->e, name);
    int status = 200;
    if (st != LORAJIT_OK) { /* it is gone from the server either way */
        snprintf(why, cap, "unload %s: %s", name, lorajit_errmsg(l->e));
        status = 500;
    }
    free(x->path);
    free(x);
    return status;
}

int srv_lora_acquire(srv_lora *l, const char *name, char *why, size_t cap) {
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&l->mu);
        lora_entry *x = find(l, name);
        if (x) x->refs++;
        pthread_mutex_unlock(&l->mu);
        if (x) return 200;
        if (attempt || !l->root || !srv_name_ok(name)) break;
        char full[PATH_MAX];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", l->root, name);
        if (stat(full, &st) || !S_ISDIR(st.st_mode)) break;
        int status = srv_lora_load(l, name, name, why, cap);
        if (status != 200 && status != 400) return status;
        if (status == 400) { /* loaded meanwhile by another request, or a broken folder */
            pthread_mutex_lock(&l->mu);
            int there = find(l, name) != NULL;
            pthread_mutex_unlock(&l->mu);
            if (!there) return status;
        }
    }
    snprintf(why, cap, "The model `%s` does not exist.", name);
    return 404;
}

void srv_lora_release(srv_lora *l, const char *name) {
    pthread_mutex_lock(&l->mu);
    for (lora_entry *x = l->list; x; x = x->next)
        if (!strcmp(x->name, name) && x->refs > 0) {
            x->refs--;
            break;
        }
    pthread_cond_broadcast(&l->released);
    pthread_mutex_unlock(&l->mu);
}

void srv_lora_each(srv_lora *l, void (*fn)(void *user, const char *name, const char *path, long created),
                   void *user) {
    pthread_mutex_lock(&l->mu);
    for (lora_entry *x = l->list; x; x = x->next)
        if (!x->unloading) fn(user, x->name, x->path, x->created);
    pthread_mutex_unlock(&l->mu);
}
