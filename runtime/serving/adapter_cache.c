/* adapter_cache.c — adapters known by name beyond the resident slots (issue 14):
 * folders registered by name (lorajit_register_adapter), a root folder where NAME
 * means ROOT/NAME (lorajit_set_adapter_dir), and parsed, detached copies of
 * adapters read lately, kept in host memory within a byte budget so that loading
 * one again after an eviction is a copy into a slot, not a file read. A plain data
 * structure: the engine calls it under lj_serve.write_lock (resolve.c). */
#include <stdlib.h>
#include <string.h>

#include "serving.h"

void lj_acache_init(lj_adapter_cache *c, size_t budget) {
    memset(c, 0, sizeof *c);
    c->budget = budget;
}

static void item_drop_image(lj_adapter_cache *c, lj_cached_adapter *it) {
    if (!it->img) return;
    c->bytes -= it->img->bytes;
    peft_adapter_free(it->img);
    free(it->img_dir);
    it->img = NULL;
    it->img_dir = NULL;
}

static lj_cached_adapter *find(const lj_adapter_cache *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->items[i].name, name) == 0) return &c->items[i];
    return NULL;
}

/* Removes item i and what it owns. */
static void item_remove(lj_adapter_cache *c, int i) {
    item_drop_image(c, &c->items[i]);
    free(c->items[i].name);
    free(c->items[i].dir);
    c->items[i] = c->items[--c->n];
}

void lj_acache_free(lj_adapter_cache *c) {
    if (!c) return;
    while (c->n > 0) item_remove(c, c->n - 1);
    free(c->items);
    free(c->root);
    memset(c, 0, sizeof *c);
}

/* The item of name, made (not registered, no image) when missing; NULL: out of memory. */
static lj_cached_adapter *find_or_add(lj_adapter_cache *c, const char *name, const char *dir) {
    lj_cached_adapter *it = find(c, name);
    if (it) return it;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        lj_cached_adapter *items = realloc(c->items, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        c->items = items;
        c->cap = cap;
    }
    char *n = lj_strdup(name), *d = lj_strdup(dir);
    if (!n || !d) {
        free(n);
        free(d);
        return NULL;
    }
    it = &c->items[c->n++];
    *it = (lj_cached_adapter){.name = n, .dir = d};
    return it;
}

/* Points it at dir (a copy); false: out of memory (it unchanged). */
static bool item_rebind(lj_cached_adapter *it, const char *dir) {
    if (strcmp(it->dir, dir) == 0) return true;
    char *d = lj_strdup(dir);
    if (!d) return false;
    free(it->dir);
    it->dir = d;
    return true;
}

lorajit_status lj_acache_register(lj_adapter_cache *c, const char *name, const char *dir, lj_err *err) {
    lj_cached_adapter *it = find(c, name);
    if (it && it->registered)
        return lj_fail(err, LORAJIT_E_EXISTS, "adapter '%s' is already registered (at %s)", name, it->dir);
    if (!(it = find_or_add(c, name, dir)) || !item_rebind(it, dir))
        return lj_fail(err, LORAJIT_E_NOMEM, "out of memory registering adapter '%s'", name);
    if (it->img && strcmp(it->img_dir, dir) != 0) item_drop_image(c, it); /* a copy of another folder */
    it->registered = true;
    return LORAJIT_OK;
}

lorajit_status lj_acache_set_root(lj_adapter_cache *c, const char *root, lj_err *err) {
    char *r = root ? lj_strdup(root) : NULL;
    if (root && !r) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory");
    free(c->root);
    c->root = r;
    return LORAJIT_OK;
}

/* 1 when name can stand for a folder under the root: one path component, printable,
 * not "." or "..", not starting with '.' (no hidden folders, no way out of the root). */
static bool component_ok(const char *name) {
    if (!name[0] || name[0] == '.' || strlen(name) > 255) return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p == '/' || *p == '\\' || *p < 0x20 || *p == 0x7f) return false;
    return true;
}

lorajit_status lj_acache_dir(const lj_adapter_cache *c, const char *name, char *out, size_t cap, lj_err *err) {
    const lj_cached_adapter *it = find(c, name);
    if (it && it->registered) {
        if (strlen(it->dir) >= cap) return lj_fail(err, LORAJIT_E_ARG, "adapter '%s': its folder path is too long", name);
        strcpy(out, it->dir);
        return LORAJIT_OK;
    }
    if (!c->root)
        return lj_fail(err, LORAJIT_E_NOT_FOUND, "adapter '%s' is not loaded, not registered "
                       "(lorajit_register_adapter) and no adapter folder is set (lorajit_set_adapter_dir)", name);
    if (!component_ok(name))
        return lj_fail(err, LORAJIT_E_ARG, "adapter name '%s' cannot name a folder under the adapter folder "
                       "(one path component, not starting with '.', no control characters)", name);
    return lj_path_join(out, cap, c->root, name, err);
}

const peft_adapter *lj_acache_get(lj_adapter_cache *c, const char *name, const char *dir) {
    lj_cached_adapter *it = find(c, name);
    if (!it || !it->img || strcmp(it->img_dir, dir) != 0) return NULL;
    it->used = ++c->clock;
    return it->img;
}

/* Drops least recently used images until `more` bytes fit in the budget; never it. */
static void make_room(lj_adapter_cache *c, size_t more, const lj_cached_adapter *keep) {
    while (c->bytes + more > c->budget) {
        lj_cached_adapter *lru = NULL;
        for (int i = 0; i < c->n; i++)
            if (c->items[i].img && &c->items[i] != keep && (!lru || c->items[i].used < lru->used))
                lru = &c->items[i];
        if (!lru) return;
        if (lru->registered) item_drop_image(c, lru);
        else item_remove(c, (int)(lru - c->items));
    }
}

void lj_acache_keep(lj_adapter_cache *c, const char *name, const char *dir, peft_adapter *img) {
    lj_cached_adapter *it = img && img->bytes <= c->budget && !img->file ? find_or_add(c, name, dir) : NULL;
    char *d = it ? lj_strdup(dir) : NULL;
    if (!it || !d) {
        free(d);
        peft_adapter_free(img);
        if (it && !it->registered && !it->img) item_remove(c, (int)(it - c->items));
        return;
    }
    item_drop_image(c, it);
    it->img_dir = d;
    make_room(c, img->bytes, it);
    it->img = img;
    it->used = ++c->clock;
    c->bytes += img->bytes;
}

bool lj_acache_forget(lj_adapter_cache *c, const char *name) {
    lj_cached_adapter *it = find(c, name);
    if (!it) return false;
    bool registered = it->registered;
    item_remove(c, (int)(it - c->items));
    return registered;
}

bool lj_acache_registered(const lj_adapter_cache *c, const char *name) {
    const lj_cached_adapter *it = find(c, name);
    return it && it->registered;
}

lorajit_status lj_acache_rebind(lj_adapter_cache *c, const char *name, const char *dir, lj_err *err) {
    lj_cached_adapter *it = find_or_add(c, name, dir);
    if (!it || !item_rebind(it, dir)) return lj_fail(err, LORAJIT_E_NOMEM, "out of memory rebinding adapter '%s'", name);
    it->registered = true;
    item_drop_image(c, it); /* the folder's files may have changed: never serve the old copy */
    return LORAJIT_OK;
}

void lj_acache_set_budget(lj_adapter_cache *c, size_t budget) {
    c->budget = budget;
    make_room(c, 0, NULL);
}
