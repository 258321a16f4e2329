#include "core/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

is_error *is_read_file(const char *path, size_t max_bytes, char **data, size_t *size) {
    *data = NULL;
    if (size) *size = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return is_errorf(IS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return is_errorf(IS_E_IO, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > max_bytes) {
        fclose(fp);
        return is_errorf(IS_E_FORMAT, "%s: file is %lld bytes, more than the %zu allowed", path,
                         (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return is_error_oom(path);
    }
    if (n && fread(buf, 1, n, fp) != n) {
        free(buf);
        fclose(fp);
        return is_errorf(IS_E_IO, "%s: read failed", path);
    }
    fclose(fp);
    buf[n] = 0;
    *data = buf;
    if (size) *size = n;
    return NULL;
}

/* Output side: only regular files are ever replaced. A symlink is followed to the file it names
 * (that file is replaced, the link stays); a device, folder, FIFO or socket is refused, because
 * renaming a temporary file over it would destroy it (as root, /dev/null itself). */

/* "a directory", "a character device", ... for an st_mode that is not a regular file. */
static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

is_error *is_output_check(const char *path) {
    if (!path || !*path) return is_errorf(IS_E_ARGUMENT, "the output path is empty");
    size_t n = strlen(path);
    if (path[n - 1] == '/') return is_errorf(IS_E_IO, "%s: names a folder (ends with /), not a file", path);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return is_errorf(IS_E_IO, "%s: is %s; only regular files are written", path, file_kind(st.st_mode));
        return NULL;
    }
    if (errno != ENOENT) return is_errorf(IS_E_IO, "%s: cannot write: %s", path, strerror(errno));
    char *dir = is_path_dirname(path);
    if (!dir) return is_error_oom(path);
    is_error *e = NULL;
    if (stat(dir, &st) != 0) e = is_errorf(IS_E_IO, "%s: folder %s: %s", path, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode)) e = is_errorf(IS_E_IO, "%s: %s is not a folder", path, dir);
    free(dir);
    return e;
}

/* The file a chain of symlinks ends at (which may not exist yet); path itself when it is no link.
 * Relative link targets are taken from the link's folder, as the kernel does. */
static is_error *resolve_links(const char *path, char **out) {
    char *cur = strdup(path);
    for (int hops = 0; cur && hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
            *out = cur;
            return NULL;
        }
        char target[4096];
        ssize_t len = readlink(cur, target, sizeof target - 1);
        if (len < 0) {
            is_error *e = is_errorf(IS_E_IO, "%s: cannot read the symbolic link: %s", cur, strerror(errno));
            free(cur);
            return e;
        }
        target[len] = 0;
        char *dir = target[0] == '/' ? NULL : is_path_dirname(cur);
        char *next = target[0] == '/' ? strdup(target) : dir ? is_path_join(dir, target) : NULL;
        free(dir);
        free(cur);
        cur = next;
    }
    if (!cur) return is_error_oom(path);
    free(cur);
    return is_errorf(IS_E_IO, "%s: too many levels of symbolic links", path);
}

/* The temp file gets the permissions of the file it replaces (a private 0600 file stays private). */
static void copy_mode(int fd, const char *final_path) {
    struct stat st;
    fchmod(fd, stat(final_path, &st) == 0 ? (st.st_mode & 0777) : 0644);
}

is_error *is_atomic_open(is_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    IS_TRY(is_output_check(path));
    IS_TRY(resolve_links(path, &af->final_path));
    size_t n = strlen(af->final_path);
    af->tmp_path = malloc(n + 16);
    if (!af->tmp_path) {
        free(af->final_path);
        af->final_path = NULL;
        return is_error_oom(path);
    }
    snprintf(af->tmp_path, n + 16, "%s.tmp-XXXXXX", af->final_path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        is_error *e = is_errorf(IS_E_IO, "%s: cannot create output file: %s", path, strerror(errno));
        free(af->final_path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return e;
    }
    copy_mode(fd, af->final_path);
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        close(fd);
        unlink(af->tmp_path);
        free(af->final_path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return is_errorf(IS_E_IO, "%s: cannot open output stream", path);
    }
    return NULL;
}

void is_atomic_abort(is_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->final_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

is_error *is_atomic_commit(is_atomic_file *af) {
    int bad = ferror(af->fp) != 0;
    bad |= fclose(af->fp) != 0;
    af->fp = NULL;
    if (bad) {
        is_error *e = is_errorf(IS_E_IO, "%s: write failed (disk full?)", af->final_path);
        is_atomic_abort(af);
        return e;
    }
    if (rename(af->tmp_path, af->final_path) != 0) {
        is_error *e = is_errorf(IS_E_IO, "%s: cannot rename temporary file into place: %s",
                                af->final_path, strerror(errno));
        is_atomic_abort(af);
        return e;
    }
    free(af->final_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return NULL;
}

is_error *is_write_file_atomic(const char *path, const void *data, size_t n) {
    is_atomic_file af;
    IS_TRY(is_atomic_open(&af, path));
    if (n && fwrite(data, 1, n, af.fp) != n) {
        is_atomic_abort(&af);
        return is_errorf(IS_E_IO, "%s: write failed", path);
    }
    return is_atomic_commit(&af);
}

char *is_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

char *is_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path);
    if (n == 0) return strdup("/");
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, path, n);
    s[n] = 0;
    return s;
}

int is_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
