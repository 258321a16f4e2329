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

is_error *is_atomic_open(is_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->final_path = malloc(n + 1);
    af->tmp_path = malloc(n + 16);
    if (!af->final_path || !af->tmp_path) {
        free(af->final_path);
        free(af->tmp_path);
        return is_error_oom(path);
    }
    memcpy(af->final_path, path, n + 1);
    snprintf(af->tmp_path, n + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        is_error *e = is_errorf(IS_E_IO, "%s: cannot create output file: %s", path, strerror(errno));
        free(af->final_path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return e;
    }
    fchmod(fd, 0644);
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
