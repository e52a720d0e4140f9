/* SPDX-License-Identifier: MIT */
#include "common/dynlib.h"

#include <dlfcn.h>
#include <string.h>

/* Function pointers are stored through object pointers, as POSIX allows for dlsym. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function and object pointers differ");

int bk_dynlib_open(const char *soname, const char *what, const struct bk_dynlib_symbol *symbols,
                   size_t n, void *table, void **handle, struct bk_error *err)
{
    *handle = NULL;
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!lib) {
        const char *why = dlerror();
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s need %s, which cannot be loaded: %s", what,
                     soname, why ? why : "unknown reason");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        dlerror();
        void *fn = dlsym(lib, symbols[i].name);
        if (!fn) {
            bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s need %s, and the one found has no %s", what,
                         soname, symbols[i].name);
            dlclose(lib);
            return -1;
        }
        memcpy((char *)table + symbols[i].offset, &fn, sizeof fn);
    }
    *handle = lib;
    return 0;
}

void bk_dynlib_close(void *handle)
{
    if (handle)
        dlclose(handle);
}
