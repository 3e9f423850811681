/* test_rt_version.c — lorajit.h's version macros and lorajit_version() name one
 * version: "MAJOR.MINOR.PATCH" built from the number macros equals
 * LORAJIT_VERSION_STRING and the library's lorajit_version() (which comes from
 * CMake's project(VERSION); version.c asserts the numbers at build time). */
#include <string.h>

#include "check.h"
#include "lorajit.h"

int main(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", LORAJIT_VERSION_MAJOR, LORAJIT_VERSION_MINOR,
             LORAJIT_VERSION_PATCH);
    CHECK(!strcmp(want, LORAJIT_VERSION_STRING), "macros %s vs LORAJIT_VERSION_STRING %s", want,
          LORAJIT_VERSION_STRING);
    const char *got = lorajit_version();
    CHECK(got != NULL, "lorajit_version() returned NULL");
    CHECK(got && !strcmp(got, LORAJIT_VERSION_STRING), "lorajit_version() %s vs header %s",
          got ? got : "(null)", LORAJIT_VERSION_STRING);
    CHECK(got == lorajit_version(), "lorajit_version() is not static text");
    CHECK(LORAJIT_VERSION_MAJOR == 0, "0.x until the API is stable, got major %d", LORAJIT_VERSION_MAJOR);
    return check_summary("rt_version");
}
