/* path.c - building file paths (path.h). */
#include <stdlib.h>
#include <string.h>

#include "common/path.h"

char *mx_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = a + b + 2 > a ? malloc(a + b + 2) : NULL;
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}
