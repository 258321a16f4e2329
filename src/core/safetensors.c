#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"

/* A header larger than this is not a model header but a corrupt length field. */
#define IS_ST_MAX_HEADER (100u * 1024u * 1024u)

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    cJSON *metadata; /* detached "__metadata__" object or NULL */
} st_file;

typedef struct {
    size_t index;  /* into tensors */
    is_tensor orig; /* the view of the file, put back by is_st_restore */
    float *data;   /* owned */
} st_override;

struct is_st {
    char *path; /* what the user opened */
    st_file *files;
    size_t n_files;
    is_tensor *tensors; /* sorted by name */
    char **names;       /* owned name strings */
    size_t n_tensors;
    st_override *ov; /* tensors viewing owned f32 data instead of the file (is_st_override_f32) */
    size_t n_ov;
};

typedef struct {
    int64_t begin, end;
    size_t index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static int tensor_cmp(const void *a, const void *b) {
    return strcmp(((const is_tensor *)a)->name, ((const is_tensor *)b)->name);
}

static is_error *grow_tensors(is_st *st, size_t extra) {
    size_t n = st->n_tensors + extra;
    is_tensor *t = realloc(st->tensors, (n ? n : 1) * sizeof *t);
    if (!t) return is_error_oom("safetensors table");
    st->tensors = t;
    char **names = realloc(st->names, (n ? n : 1) * sizeof *names);
    if (!names) return is_error_oom("safetensors table");
    st->names = names;
    return NULL;
}

/* Parse one file's header and append its tensors to st. */
static is_error *load_one(is_st *st, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return is_errorf(IS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return is_errorf(IS_E_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return is_errorf(IS_E_FORMAT, "%s: file is %zu bytes, too short for a safetensors header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return is_errorf(IS_E_IO, "%s: mmap failed: %s", path, strerror(errno));

    st_file *files = realloc(st->files, (st->n_files + 1) * sizeof *files);
    if (!files) {
        munmap(map, size);
        return is_error_oom(path);
    }
    st->files = files;
    st_file *f = &st->files[st->n_files++];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    f->map = map;
    f->map_size = size;
    if (!f->path) return is_error_oom(path);

    const unsigned char *bytes = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | bytes[i];
    if (hlen > IS_ST_MAX_HEADER)
        return is_errorf(IS_E_FORMAT, "%s: header length %llu is absurd (limit %u bytes)", path,
                         (unsigned long long)hlen, IS_ST_MAX_HEADER);
    if (hlen > size - 8)
        return is_errorf(IS_E_FORMAT, "%s: header length %llu runs past the end of the %zu-byte file",
                         path, (unsigned long long)hlen, size);
    cJSON *root = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)hlen);
    if (!root) return is_errorf(IS_E_FORMAT, "%s: header is not valid JSON", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return is_errorf(IS_E_FORMAT, "%s: header is not a JSON object", path);
    }
    const unsigned char *data = bytes + 8 + hlen;
    int64_t data_size = (int64_t)(size - 8 - hlen);

    size_t count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    is_error *err = grow_tensors(st, count);
    span *spans = calloc(count ? count : 1, sizeof *spans);
    if (!spans && !err) err = is_error_oom(path);
    size_t n_spans = 0;

    for (cJSON *it = root->child; it && !err; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) {
                err = is_errorf(IS_E_FORMAT, "%s: __metadata__ is not an object", path);
                break;
            }
            continue;
        }
        if (!cJSON_IsObject(it)) {
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': entry is not an object", path, name);
            break;
        }
        cJSON *jdt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *jshape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *joff = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        is_tensor t;
        memset(&t, 0, sizeof t);
        if (!cJSON_IsString(jdt)) {
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': missing string field 'dtype'", path, name);
            break;
        }
        if (is_dtype_from_name(jdt->valuestring, &t.dtype) != 0) {
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': unknown dtype '%s' (expected F32, F16, BF16, "
                            "F64, I64, I32, I16, I8, U8 or BOOL)", path, name, jdt->valuestring);
            break;
        }
        if (!cJSON_IsArray(jshape) || cJSON_GetArraySize(jshape) > IS_MAX_DIMS) {
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': 'shape' must be an array of at most %d sizes",
                            path, name, IS_MAX_DIMS);
            break;
        }
        t.ndim = cJSON_GetArraySize(jshape);
        int64_t numel = 1;
        int k = 0;
        for (cJSON *d = jshape->child; d; d = d->next, k++) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9.0e15 ||
                d->valuedouble != (double)(int64_t)d->valuedouble) {
                err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                                path, name, k);
                break;
            }
            t.shape[k] = (int64_t)d->valuedouble;
            if (t.shape[k] && numel > INT64_MAX / 16 / t.shape[k]) {
                err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': shape product overflows", path, name);
                break;
            }
            numel *= t.shape[k];
        }
        if (err) break;
        t.numel = numel;
        if (!cJSON_IsArray(joff) || cJSON_GetArraySize(joff) != 2 || !cJSON_IsNumber(joff->child) ||
            !cJSON_IsNumber(joff->child->next)) {
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': 'data_offsets' must be [begin, end]", path, name);
            break;
        }
        double b = joff->child->valuedouble, e = joff->child->next->valuedouble;
        if (b < 0 || e < b || e > (double)data_size || b != (double)(int64_t)b || e != (double)(int64_t)e) {
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': data_offsets [%.0f, %.0f] out of range "
                            "(data section is %lld bytes)", path, name, b, e, (long long)data_size);
            break;
        }
        int64_t nbytes = (int64_t)e - (int64_t)b;
        if (nbytes != numel * (int64_t)is_dtype_size(t.dtype)) {
            char sh[128];
            err = is_errorf(IS_E_FORMAT, "%s: tensor '%s': %lld bytes stored but shape %s of %s needs %lld",
                            path, name, (long long)nbytes, is_shape_str(t.shape, t.ndim, sh, sizeof sh),
                            is_dtype_name(t.dtype), (long long)(numel * (int64_t)is_dtype_size(t.dtype)));
            break;
        }
        char *nm = strdup(name);
        if (!nm) {
            err = is_error_oom(path);
            break;
        }
        t.name = nm;
        t.file = f->path;
        t.data = data + (int64_t)b;
        t.nbytes = (size_t)nbytes;
        spans[n_spans].begin = (int64_t)b;
        spans[n_spans].end = (int64_t)e;
        spans[n_spans].index = st->n_tensors;
        n_spans++;
        st->names[st->n_tensors] = nm;
        st->tensors[st->n_tensors++] = t;
    }
    if (!err) {
        /* The tensors must tile the data section exactly: no overlap, no gap, no tail. */
        qsort(spans, n_spans, sizeof *spans, span_cmp);
        int64_t pos = 0;
        for (size_t i = 0; i < n_spans && !err; i++) {
            const char *nm = st->tensors[spans[i].index].name;
            if (spans[i].begin < pos)
                err = is_errorf(IS_E_FORMAT, "%s: tensor '%s' overlaps the previous tensor's bytes", path, nm);
            else if (spans[i].begin > pos)
                err = is_errorf(IS_E_FORMAT, "%s: %lld unused bytes before tensor '%s' (offsets must cover "
                                "the data section)", path, (long long)(spans[i].begin - pos), nm);
            pos = spans[i].end > pos ? spans[i].end : pos;
        }
        if (!err && pos != data_size)
            err = is_errorf(IS_E_FORMAT, "%s: tensors cover %lld of %lld data bytes (trailing bytes)", path,
                            (long long)pos, (long long)data_size);
    }
    if (!err) {
        cJSON *meta = cJSON_DetachItemFromObjectCaseSensitive(root, "__metadata__");
        f->metadata = meta;
    }
    free(spans);
    cJSON_Delete(root);
    return err;
}

static is_error *load_index(is_st *st, const char *path) {
    char *text = NULL;
    size_t n = 0;
    IS_TRY(is_read_file(path, 64u << 20, &text, &n));
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!root) return is_errorf(IS_E_FORMAT, "%s: not valid JSON", path);
    cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    is_error *err = NULL;
    if (!cJSON_IsObject(map)) err = is_errorf(IS_E_FORMAT, "%s: missing object 'weight_map'", path);
    else if (!map->child) err = is_errorf(IS_E_FORMAT, "%s: 'weight_map' is empty (an index names at least one tensor)", path);
    char *dir = err ? NULL : is_path_dirname(path);
    /* Load each distinct shard once, then check the map agrees with the shards. */
    for (cJSON *it = map ? map->child : NULL; it && !err; it = it->next) {
        if (!cJSON_IsString(it)) {
            err = is_errorf(IS_E_FORMAT, "%s: weight_map['%s'] is not a file name", path, it->string);
            break;
        }
        if (strchr(it->valuestring, '/')) {
            err = is_errorf(IS_E_FORMAT, "%s: weight_map['%s'] = '%s' must be a file in the same folder",
                            path, it->string, it->valuestring);
            break;
        }
        char *shard = is_path_join(dir, it->valuestring);
        if (!shard) {
            err = is_error_oom(path);
            break;
        }
        int seen = 0;
        for (size_t i = 0; i < st->n_files; i++) seen |= strcmp(st->files[i].path, shard) == 0;
        if (!seen) err = load_one(st, shard);
        free(shard);
    }
    free(dir);
    cJSON_Delete(root);
    return err;
}

is_error *is_st_open(const char *path, is_st **out) {
    *out = NULL;
    is_st *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return is_error_oom(path);
    }
    size_t n = strlen(path);
    const char *suffix = ".index.json";
    is_error *err = (n > strlen(suffix) && strcmp(path + n - strlen(suffix), suffix) == 0)
                        ? load_index(st, path)
                        : load_one(st, path);
    if (!err && st->n_tensors > 1) { /* qsort's pointer must not be NULL, even for no elements */
        qsort(st->tensors, st->n_tensors, sizeof *st->tensors, tensor_cmp);
        for (size_t i = 1; i < st->n_tensors && !err; i++)
            if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
                err = is_errorf(IS_E_FORMAT, "%s: duplicate tensor name '%s'", st->tensors[i].file,
                                st->tensors[i].name);
    }
    if (err) {
        is_st_close(st);
        return err;
    }
    *out = st;
    return NULL;
}

is_error *is_st_open_in_dir(const char *dir, const char *stem, is_st **out) {
    static const char *const suffixes[] = {".safetensors", ".safetensors.index.json", ".fp16.safetensors",
                                           ".fp16.safetensors.index.json"};
    *out = NULL;
    char name[512];
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(name, sizeof name, "%s%s", stem, suffixes[i]);
        char *path = is_path_join(dir, name);
        if (!path) return is_error_oom(dir);
        if (is_file_exists(path)) {
            is_error *e = is_st_open(path, out);
            free(path);
            return e;
        }
        free(path);
    }
    return is_errorf(IS_E_IO, "%s: no weights found (expected %s.safetensors, its sharded .index.json, or the "
                     ".fp16 variants)", dir, stem);
}

void is_st_close(is_st *st) {
    if (!st) return;
    is_st_restore(st);
    for (size_t i = 0; i < st->n_tensors; i++) free(st->names[i]);
    for (size_t i = 0; i < st->n_files; i++) {
        munmap(st->files[i].map, st->files[i].map_size);
        free(st->files[i].path);
        cJSON_Delete(st->files[i].metadata);
    }
    free(st->names);
    free(st->tensors);
    free(st->files);
    free(st->path);
    free(st);
}

const char *is_st_path(const is_st *st) { return st->path; }
size_t is_st_count(const is_st *st) { return st->n_tensors; }
void is_st_drop_pages(const is_st *st, const is_tensor *t) {
    if (!st || !t || !t->nbytes) return;
    uintptr_t b = (uintptr_t)t->data, e = b + t->nbytes, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < st->n_files; i++) {
        uintptr_t m0 = (uintptr_t)st->files[i].map, m1 = m0 + st->files[i].map_size;
        if (b < m0 || e > m1) continue;
        uintptr_t p0 = (b + page - 1) / page * page, p1 = e / page * page; /* pages wholly inside t */
        if (p1 > p0) madvise((void *)p0, p1 - p0, MADV_DONTNEED);
        return;
    }
}

const is_tensor *is_st_at(const is_st *st, size_t i) { return i < st->n_tensors ? &st->tensors[i] : NULL; }

int64_t is_st_max_numel(const is_st *st) {
    int64_t m = 0;
    for (size_t i = 0; i < st->n_tensors; i++) m = st->tensors[i].numel > m ? st->tensors[i].numel : m;
    return m;
}

const is_tensor *is_st_find(const is_st *st, const char *name) {
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *is_st_metadata(const is_st *st, const char *key) {
    if (!st->n_files || !st->files[0].metadata) return NULL;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(st->files[0].metadata, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

is_error *is_st_get(const is_st *st, const char *name, int ndim, const int64_t *shape,
                    const is_tensor **out) {
    *out = NULL;
    const is_tensor *t = is_st_find(st, name);
    if (!t) return is_errorf(IS_E_SHAPE, "%s: missing tensor '%s'", st->path, name);
    if (shape) IS_TRY(is_tensor_expect(t, ndim, shape));
    *out = t;
    return NULL;
}

is_error *is_st_getv(const is_st *st, const is_tensor **out, const char *name, int ndim, ...) {
    int64_t shape[IS_MAX_DIMS];
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim && i < IS_MAX_DIMS; i++) shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    return is_st_get(st, name, ndim, shape, out);
}

is_error *is_st_getf(const is_st *st, const is_tensor **out, int ndim, const int64_t *shape,
                     const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return is_st_get(st, name, ndim, shape, out);
}

/* ------------------------------------------------------------------ overrides */

/* The tensor is changed in place, so every view a network already holds (const is_tensor * into
 * st->tensors) sees the new data without the network knowing. */
is_error *is_st_override_f32(is_st *st, const is_tensor *t, float **data) {
    *data = NULL;
    if (!st || !t || t < st->tensors || t >= st->tensors + st->n_tensors)
        return is_errorf(IS_E_ARGUMENT, "is_st_override_f32: tensor is not one of %s", st ? st->path : "(null)");
    size_t index = (size_t)(t - st->tensors);
    for (size_t i = 0; i < st->n_ov; i++)
        if (st->ov[i].index == index) {
            *data = st->ov[i].data;
            return NULL;
        }
    if (t->dtype != IS_DT_F32 && t->dtype != IS_DT_F16 && t->dtype != IS_DT_BF16 && t->dtype != IS_DT_F64)
        return is_errorf(IS_E_SHAPE, "%s: tensor '%s' has dtype %s, expected a float dtype", st->path, t->name,
                         is_dtype_name(t->dtype));
    st_override *ov = realloc(st->ov, (st->n_ov + 1) * sizeof *ov);
    if (!ov) return is_error_oom(t->name);
    st->ov = ov;
    float *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!buf) return is_error_oom(t->name);
    is_tensor_to_f32(t, buf);
    st->ov[st->n_ov++] = (st_override){.index = index, .orig = *t, .data = buf};
    is_tensor *w = &st->tensors[index];
    w->dtype = IS_DT_F32;
    w->data = buf;
    w->nbytes = (size_t)t->numel * sizeof(float);
    *data = buf;
    return NULL;
}

void is_st_restore(is_st *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_ov; i++) {
        st->tensors[st->ov[i].index] = st->ov[i].orig;
        free(st->ov[i].data);
    }
    free(st->ov);
    st->ov = NULL;
    st->n_ov = 0;
}

void is_st_restore_tensor(is_st *st, const is_tensor *t) {
    if (!st || !t || t < st->tensors || t >= st->tensors + st->n_tensors) return;
    size_t index = (size_t)(t - st->tensors);
    for (size_t i = 0; i < st->n_ov; i++)
        if (st->ov[i].index == index) {
            st->tensors[index] = st->ov[i].orig;
            free(st->ov[i].data);
            st->ov[i] = st->ov[--st->n_ov];
            return;
        }
}

size_t is_st_override_count(const is_st *st) { return st ? st->n_ov : 0; }

/* ------------------------------------------------------------------ writer */

typedef struct {
    char *name;
    is_dtype dtype;
    int ndim;
    int64_t shape[IS_MAX_DIMS];
    void *data;
    size_t nbytes;
} wentry;

struct is_st_writer {
    wentry *e;
    size_t n;
    cJSON *metadata;
};

is_st_writer *is_st_writer_new(void) { return calloc(1, sizeof(is_st_writer)); }

is_error *is_st_writer_add(is_st_writer *w, const char *name, is_dtype dt, int ndim,
                           const int64_t *shape, const void *data) {
    if (ndim < 0 || ndim > IS_MAX_DIMS) return is_errorf(IS_E_ARGUMENT, "tensor '%s': bad rank %d", name, ndim);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0) return is_errorf(IS_E_ARGUMENT, "duplicate tensor '%s'", name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    wentry *grown = realloc(w->e, (w->n + 1) * sizeof *grown);
    if (!grown) return is_error_oom(name);
    w->e = grown;
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->nbytes = numel * is_dtype_size(dt);
    e->name = strdup(name);
    e->data = malloc(e->nbytes ? e->nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return is_error_oom(name);
    }
    if (e->nbytes) memcpy(e->data, data, e->nbytes);
    e->dtype = dt;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    w->n++;
    return NULL;
}

is_error *is_st_writer_add_f32(is_st_writer *w, const char *name, int ndim, const int64_t *shape,
                               const float *data) {
    return is_st_writer_add(w, name, IS_DT_F32, ndim, shape, data);
}

is_error *is_st_writer_set_metadata(is_st_writer *w, const char *key, const char *value) {
    if (!w->metadata && !(w->metadata = cJSON_CreateObject())) return is_error_oom("metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(w->metadata, key);
    if (!cJSON_AddStringToObject(w->metadata, key, value)) return is_error_oom("metadata");
    return NULL;
}

is_error *is_st_writer_save(const is_st_writer *w, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return is_error_oom(path);
    if (w->metadata) cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->metadata, 1));
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wentry *e = &w->e[i];
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        double shape[IS_MAX_DIMS], offs[2] = {(double)off, (double)(off + e->nbytes)};
        for (int k = 0; k < e->ndim; k++) shape[k] = (double)e->shape[k];
        if (!t || !cJSON_AddStringToObject(t, "dtype", is_dtype_name(e->dtype)) ||
            !cJSON_AddItemToObject(t, "shape", cJSON_CreateDoubleArray(shape, e->ndim)) ||
            !cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2))) {
            cJSON_Delete(root);
            return is_error_oom(path);
        }
        off += e->nbytes;
    }
    char *header = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!header) return is_error_oom(path);
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7; /* 8-byte aligned data */
    is_atomic_file af;
    is_error *err = is_atomic_open(&af, path);
    if (err) {
        free(header);
        return err;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(header, 1, hlen, af.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', af.fp) != EOF;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = w->e[i].nbytes == 0 || fwrite(w->e[i].data, 1, w->e[i].nbytes, af.fp) == w->e[i].nbytes;
    free(header);
    if (!ok) {
        is_atomic_abort(&af);
        return is_errorf(IS_E_IO, "%s: write failed", path);
    }
    return is_atomic_commit(&af);
}

void is_st_writer_free(is_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    free(w->e);
    cJSON_Delete(w->metadata);
    free(w);
}
