/* path.h - building file paths. */
#ifndef MIXQ_PATH_H
#define MIXQ_PATH_H

/* "dir/name" in a new string (free() it), or NULL if out of memory. */
char *mx_path_join(const char *dir, const char *name);

#endif
