/* Small file helpers: whole-file reads, atomic writes (temp file + rename), paths. */
#ifndef IS_CORE_FILEIO_H
#define IS_CORE_FILEIO_H

#include <stdio.h>
#include <stddef.h>

#include "core/error.h"

/* Read a whole file (NUL-terminated for convenience). max_bytes guards against huge inputs. */
is_error *is_read_file(const char *path, size_t max_bytes, char **data, size_t *size);

/* Whether path can be an output file: non-empty, and either a regular file (through any symlinks)
 * or a new name in an existing folder. A device, folder, FIFO or socket is an error naming the path
 * and what it is. Creates nothing. */
is_error *is_output_check(const char *path);

/* Atomic output: write into "<target>.tmp-XXXXXX" in the same folder, then rename over <target>,
 * where <target> is path with symlinks followed (the link stays a link, the file it names is
 * replaced). Refuses what is_output_check refuses. On any failure the temporary file is removed
 * and the target is untouched. */
typedef struct {
    FILE *fp;
    char *final_path;
    char *tmp_path;
} is_atomic_file;
is_error *is_atomic_open(is_atomic_file *af, const char *path);
is_error *is_atomic_commit(is_atomic_file *af); /* flush, fsync-free close, rename */
void is_atomic_abort(is_atomic_file *af);        /* close and delete the temp file */
is_error *is_write_file_atomic(const char *path, const void *data, size_t n);

/* "dir/name" into a new malloc'ed string (NULL on OOM). */
char *is_path_join(const char *dir, const char *name);
/* Directory part of a path as a new string ("." when none). */
char *is_path_dirname(const char *path);
int is_file_exists(const char *path);

#endif
