/* manifest_forge.h — tests that forge an artifact: edit its manifest.json, re-seal it
 * (lj_manifest_seal) so that only the library's own checks (the layout digest, the
 * library hash) can tell. Include after check.h, cJSON and serving.h. */
#ifndef LORAJIT_TESTS_MANIFEST_FORGE_H
#define LORAJIT_TESTS_MANIFEST_FORGE_H

/* Edits dir's manifest with edit(root JSON, arg), re-seals it and writes it back;
 * failures are CHECKs. */
static void forge(const char *dir, void (*edit)(cJSON *, const char *), const char *arg) {
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    long n;
    char *text = check_read_file(path, &n);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL, "parse %s", path);
    if (!j) return;
    edit(j, arg);
    lj_err err = {0};
    CHECK(lj_manifest_seal(j, &err) == LORAJIT_OK, "seal: %s", err.msg);
    char *out = cJSON_Print(j);
    CHECK(out && check_write_file(path, out, (long)strlen(out)) == 0, "write %s", path);
    cJSON_free(out);
    cJSON_Delete(j);
}

#endif
