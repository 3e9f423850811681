/* version.c — lorajit_version(). The build passes CMake's project(VERSION) in as
 * LJ_PROJECT_VERSION*; the asserts keep lorajit.h's LORAJIT_VERSION_* macros equal
 * to it, so the header, the libraries and lorajit.pc name one version. */
#include "lorajit.h"

#ifndef LJ_PROJECT_VERSION
#error "LJ_PROJECT_VERSION* come from CMakeLists.txt (project VERSION)"
#endif
_Static_assert(LORAJIT_VERSION_MAJOR == LJ_PROJECT_VERSION_MAJOR &&
                   LORAJIT_VERSION_MINOR == LJ_PROJECT_VERSION_MINOR &&
                   LORAJIT_VERSION_PATCH == LJ_PROJECT_VERSION_PATCH,
               "LORAJIT_VERSION_* in include/lorajit.h differ from project(VERSION) in CMakeLists.txt");

const char *lorajit_version(void) { return LJ_PROJECT_VERSION; }
