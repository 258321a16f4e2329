/* Shared helpers of the libFuzzer harnesses: see fuzz_common.h. */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS, memmem */
#include "fuzz_common.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef IS_GOLDEN_DEFAULT
#error "IS_GOLDEN_DEFAULT must name the default golden folder"
#endif

static char *tmp_root;

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tmp_root(void) {
    if (tmp_root) nftw(tmp_root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fz_tmpdir(void) {
    if (tmp_root) return tmp_root;
    const char *bases[3] = {getenv("TMPDIR"), "/dev/shm", "/tmp"};
    for (int i = 0; i < 3 && !tmp_root; i++) {
        struct stat sb;
        if (!bases[i] || !*bases[i] || stat(bases[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        size_t n = strlen(bases[i]) + 32;
        char *t = malloc(n);
        if (!t) fz_fail("out of memory");
        snprintf(t, n, "%s/is-fuzz-XXXXXX", bases[i]);
        if (mkdtemp(t)) tmp_root = t;
        else free(t);
    }
    if (!tmp_root) fz_fail("cannot create a temporary folder (TMPDIR, /dev/shm, /tmp)");
    atexit(remove_tmp_root);
    return tmp_root;
}

/* Paths made by fz_path and fz_golden stay reachable from here (LeakSanitizer sees them as kept). */
static char *volatile kept[256];
static int n_kept;

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (!p || n_kept == (int)(sizeof kept / sizeof *kept)) fz_fail("out of memory for paths");
    snprintf(p, n, "%s/%s", a, b);
    kept[n_kept++] = p;
    return p;
}

const char *fz_path(const char *rel) { return join(fz_tmpdir(), rel); }

const char *fz_golden(const char *rel) {
    const char *env = getenv("IS_GOLDEN_DIR");
    char *p = join(env && *env ? env : IS_GOLDEN_DEFAULT, rel);
    if (access(p, R_OK) != 0)
        fz_fail("golden file %s not found (set IS_GOLDEN_DIR to the golden folder): %s", p, strerror(errno));
    return p;
}

void fz_mkdirs(const char *dir) {
    char *d = strdup(dir);
    if (!d) fz_fail("out of memory");
    for (char *s = d + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(d, 0700) != 0 && errno != EEXIST) fz_fail("mkdir %s: %s", d, strerror(errno));
        *s = '/';
    }
    if (mkdir(d, 0700) != 0 && errno != EEXIST) fz_fail("mkdir %s: %s", d, strerror(errno));
    free(d);
}

static void mkdirs_of(const char *path) {
    char *d = strdup(path);
    if (!d) fz_fail("out of memory");
    char *slash = strrchr(d, '/');
    if (slash && slash != d) {
        *slash = 0;
        fz_mkdirs(d);
    }
    free(d);
}

void fz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        mkdirs_of(path);
        f = fopen(path, "wb");
    }
    if (!f) fz_fail("cannot write %s: %s", path, strerror(errno));
    if ((n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) fz_fail("cannot write %s: %s", path, strerror(errno));
}

void fz_remove(const char *path) {
    if (unlink(path) != 0 && errno != ENOENT) fz_fail("cannot remove %s: %s", path, strerror(errno));
}

void fz_symlink(const char *target, const char *path) {
    mkdirs_of(path);
    fz_remove(path);
    if (symlink(target, path) != 0) fz_fail("symlink %s -> %s: %s", path, target, strerror(errno));
}

int fz_split(const uint8_t *data, size_t size, fz_part *parts, int max) {
    const size_t sep_len = sizeof FZ_SEP - 1;
    int n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n < max - 1) {
        const uint8_t *s = memmem(p, (size_t)(end - p), FZ_SEP, sep_len);
        if (!s) break;
        parts[n].p = p;
        parts[n++].n = (size_t)(s - p);
        p = s + sep_len;
    }
    parts[n].p = p;
    parts[n++].n = (size_t)(end - p);
    return n;
}

char *fz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) fz_fail("out of memory");
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

int fz_error(is_error *err) {
    if (!err) return 0;
    const char *msg = is_error_message(err);
    if (!msg) fz_fail("is_error_message returned NULL");
    size_t n = strlen(msg);
    if (n == 0) fz_fail("an error with an empty message (status %s)", is_status_name(is_error_code(err)));
    is_status code = is_error_code(err);
    if (code <= IS_OK || code > IS_E_CANCELLED) fz_fail("an error with status %d: %s", (int)code, msg);
    fz_touch(msg, n);
    is_error_free(err);
    return 1;
}

void fz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

is_unet *fz_golden_unet(void) {
    const char *dir = fz_golden("models/tiny-sdxl/unet");
    is_unet *u = NULL;
    is_error *e = is_unet_load(dir, &u);
    if (e) fz_fail("loading %s: %s", dir, is_error_message(e));
    return u;
}

unsigned fz_touch(const void *p, size_t n) {
    /* Copied out in chunks: ASan's memcpy checks each whole source range, and the copy reads every page (a
     * byte loop did the same with a libFuzzer comparison hook per byte: most of ip_adapter's time). */
    static unsigned char chunk[1 << 16];
    const unsigned char *b = p;
    unsigned h = 0;
    for (size_t off = 0; off < n; off += sizeof chunk) {
        size_t len = n - off < sizeof chunk ? n - off : sizeof chunk;
        memcpy(chunk, b + off, len);
        __asm__ volatile("" : : "r"(chunk) : "memory"); /* the copy counts as read: it is not optimised away */
        h = h * 31u + chunk[0] + chunk[len - 1];
    }
    return h;
}

const is_attn_module *fz_sdxl_modules(void) {
    /* name, kind, block, index, modules in the block, ComfyUI index */
    static const is_attn_module m[FZ_SDXL_MODULES] = {
        {"down_blocks.1.attentions.0", 'd', 1, 0, 2, 0}, {"down_blocks.1.attentions.1", 'd', 1, 1, 2, 1},
        {"down_blocks.2.attentions.0", 'd', 2, 0, 2, 2}, {"down_blocks.2.attentions.1", 'd', 2, 1, 2, 3},
        {"up_blocks.0.attentions.0", 'u', 0, 0, 3, 5},   {"up_blocks.0.attentions.1", 'u', 0, 1, 3, 6},
        {"up_blocks.0.attentions.2", 'u', 0, 2, 3, 7},   {"up_blocks.1.attentions.0", 'u', 1, 0, 3, 8},
        {"up_blocks.1.attentions.1", 'u', 1, 1, 3, 9},   {"up_blocks.1.attentions.2", 'u', 1, 2, 3, 10},
        {"mid_block.attentions.0", 'm', 0, 0, 1, 4},
    };
    return m;
}

void fz_check_st(const is_st *st) {
    size_t n = is_st_count(st);
    int64_t max_numel = 0;
    for (size_t i = 0; i < n; i++) {
        const is_tensor *t = is_st_at(st, i);
        if (!t || !t->name) fz_fail("is_st_at(%zu) of %zu is NULL", i, n);
        if (i && strcmp(is_st_at(st, i - 1)->name, t->name) >= 0) fz_fail("tensor names not sorted and unique");
        if (is_st_find(st, t->name) != t) fz_fail("is_st_find('%s') does not find it", t->name);
        if (t->ndim < 0 || t->ndim > IS_MAX_DIMS) fz_fail("tensor '%s': rank %d", t->name, t->ndim);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
        if (numel != t->numel || (size_t)numel * is_dtype_size(t->dtype) != t->nbytes)
            fz_fail("tensor '%s': numel %lld, %zu bytes of %s", t->name, (long long)t->numel, t->nbytes,
                    is_dtype_name(t->dtype));
        fz_touch(t->data, t->nbytes); /* a view past its file's mapping is an ASan/SEGV report here */
        if (t->numel > max_numel) max_numel = t->numel;
        if (t->numel > 0 && t->numel <= 4096) {
            float *f = is_tensor_dup_f32(t);
            if (!f) fz_fail("out of memory");
            free(f);
        }
        is_st_drop_pages(st, t);
        fz_touch(t->data, t->nbytes); /* dropped pages are read from the file again */
    }
    if (is_st_max_numel(st) != max_numel) fz_fail("is_st_max_numel is %lld, expected %lld",
                                                  (long long)is_st_max_numel(st), (long long)max_numel);
    const char *fmt = is_st_metadata(st, "format");
    if (fmt) fz_touch(fmt, strlen(fmt));
}
