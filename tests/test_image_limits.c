/* Hostile style images (issue 12): the reproducers of the image review, built here byte by byte
 * (no zlib: stored deflate blocks, or one hand-made dynamic-Huffman block for the bomb), each loaded
 * in a child process that must stay within 300 MB with a clear error or the right image (its time is
 * printed, not asserted: no timed tests; a bomb shows in the memory bound).
 * They are also committed under tests/regressions/images/ as a fuzzing corpus; this test checks the
 * committed files equal what it builds (IS_WRITE_REGRESSIONS=1 rewrites them). docs/LIMITS.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "harness.h"
#include "vision/image.h"

#define MAX_RSS_MB 300

/* ------------------------------------------------------------------ byte buffers */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_u8(buf *b, unsigned v) {
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put_be16(buf *b, unsigned v) {
    put_u8(b, v >> 8);
    put_u8(b, v);
}

static void put_be32(buf *b, uint32_t v) {
    put_be16(b, v >> 16);
    put_be16(b, v & 0xFFFF);
}

static void put_le16(buf *b, unsigned v) {
    put_u8(b, v & 0xFF);
    put_u8(b, v >> 8);
}

/* Bits into bytes: LSB first (deflate) or MSB first (JPEG entropy data, 0xFF stuffed). */
typedef struct {
    buf *b;
    unsigned acc;
    int nbits, msb_first;
} bits;

static void flush_byte(bits *w) {
    put_u8(w->b, w->acc);
    if (w->msb_first && w->acc == 0xFF) put_u8(w->b, 0); /* JPEG byte stuffing */
    w->acc = 0;
    w->nbits = 0;
}

static void put_bit(bits *w, unsigned bit) {
    w->acc |= (bit & 1) << (w->msb_first ? 7 - w->nbits : w->nbits);
    if (++w->nbits == 8) flush_byte(w);
}

/* n bits of v, least significant first (deflate's header fields and extra bits). */
static void put_value(bits *w, unsigned v, int n) {
    for (int i = 0; i < n; i++) put_bit(w, v >> i);
}

/* A Huffman code of len bits: most significant first, in either convention. */
static void put_code(bits *w, unsigned code, int len) {
    for (int i = len - 1; i >= 0; i--) put_bit(w, code >> i);
}

static void flush_bits(bits *w, unsigned pad) {
    while (w->nbits) put_bit(w, pad);
}

/* ------------------------------------------------------------------ PNG pieces */

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

static uint32_t adler32_of(const uint8_t *p, size_t n) {
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) a = (a + p[i]) % 65521, b = (b + a) % 65521;
    return (b << 16) | a;
}

/* A chunk with its CRC (crc_xor != 0 breaks it). */
static void put_chunk(buf *b, const char *type, const uint8_t *data, uint32_t n, uint32_t crc_xor) {
    put_be32(b, n);
    size_t start = b->n;
    put(b, type, 4);
    put(b, data, n);
    put_be32(b, crc32_of(b->p + start, n + 4) ^ crc_xor);
}

static void put_ihdr(buf *b, uint32_t w, uint32_t h, int bit_depth, int color_type, int interlace) {
    buf d = {0};
    put_be32(&d, w);
    put_be32(&d, h);
    put_u8(&d, (unsigned)bit_depth);
    put_u8(&d, (unsigned)color_type);
    put_u8(&d, 0);
    put_u8(&d, 0);
    put_u8(&d, (unsigned)interlace);
    put(b, png_sig, 8);
    put_chunk(b, "IHDR", d.p, (uint32_t)d.n, 0);
    free(d.p);
}

/* A zlib stream of stored blocks. final: the last block says so and the Adler-32 follows; else the
 * stream never ends. */
static void put_zlib_stored(buf *b, const uint8_t *raw, size_t n, int final) {
    put_u8(b, 0x78);
    put_u8(b, 0x01);
    size_t off = 0;
    do {
        size_t len = n - off > 65535 ? 65535 : n - off;
        put_u8(b, final && off + len == n); /* BFINAL, BTYPE 00 (stored) */
        put_le16(b, (unsigned)len);
        put_le16(b, (unsigned)(~len & 0xFFFF));
        put(b, raw + off, len);
        off += len;
    } while (off < n);
    if (final) put_be32(b, adler32_of(raw, n));
}

/* ------------------------------------------------------------------ reproducers */

/* 1. A 44-byte PNG whose text chunk declares 2^31-1 bytes: libpng allocated and zeroed 2 GB. */
static void make_text_bomb(buf *b, const char *type) {
    put_ihdr(b, 1, 1, 8, 0, 0);
    put_be32(b, 0x7FFFFFFFu);
    put(b, type, 4);
    put(b, "k\0v", 3);
}

/* The deflate code lengths of the zero-run block: literal 0 and end-of-block (2 bits), length 258
 * (symbol 285, 1 bit); one distance code (distance 1, 1 bit). Written with the code-length
 * alphabet {1: "10", 2: "11", 18: "0" + 7 bits of zero-run length - 11}. */
static void put_zero_run_header(bits *w) {
    static const int cl_order[18] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1};
    put_value(w, 1, 1);  /* BFINAL */
    put_value(w, 2, 2);  /* BTYPE 10: dynamic Huffman */
    put_value(w, 29, 5); /* HLIT: 286 literal/length codes */
    put_value(w, 0, 5);  /* HDIST: 1 distance code */
    put_value(w, 14, 4); /* HCLEN: 18 code-length codes */
    for (int i = 0; i < 18; i++)
        put_value(w, cl_order[i] == 18 ? 1 : (cl_order[i] == 1 || cl_order[i] == 2) ? 2 : 0, 3);
    const int zeros[3] = {138, 117, 28}; /* symbols 1..255 (138 + 117), 257..284 */
    put_code(w, 3, 2);                   /* symbol 0: length 2 */
    for (int i = 0; i < 2; i++) put_code(w, 0, 1), put_value(w, (unsigned)zeros[i] - 11, 7);
    put_code(w, 3, 2); /* symbol 256: length 2 */
    put_code(w, 0, 1), put_value(w, (unsigned)zeros[2] - 11, 7);
    put_code(w, 2, 2); /* symbol 285: length 1 */
    put_code(w, 2, 2); /* distance 0: length 1 */
}

/* A zlib stream of n zero bytes: one literal, then (length 258, distance 1) copies of 2 bits each. */
static void put_zlib_zeros(buf *b, uint64_t n) {
    put_u8(b, 0x78);
    put_u8(b, 0x01);
    bits w = {b, 0, 0, 0};
    put_zero_run_header(&w);
    put_code(&w, 2, 2); /* literal 0 */
    uint64_t left = n - 1;
    for (; left >= 258; left -= 258) put_code(&w, 0, 1), put_code(&w, 0, 1);
    for (; left > 0; left--) put_code(&w, 2, 2);
    put_code(&w, 3, 2); /* end of block */
    flush_bits(&w, 0);
    put_be32(b, (uint32_t)((n % 65521) << 16 | 1)); /* Adler-32 of zeros: a = 1, b = n */
}

/* 2. A 16384x16384 grey PNG of zeros in 260 KB: 1 GB of buffers once decoded. */
static void make_png_bomb(buf *b) {
    const uint32_t side = 16384;
    put_ihdr(b, side, side, 8, 0, 0);
    buf z = {0};
    put_zlib_zeros(&z, (uint64_t)side * (side + 1)); /* each row: filter byte + pixels */
    put_chunk(b, "IDAT", z.p, (uint32_t)z.n, 0);
    put_chunk(b, "IEND", NULL, 0, 0);
    free(z.p);
}

/* 3. A progressive 3-component JPEG of w x h in a few hundred bytes: one AC scan of component 1
 * whose end-of-band runs (32767 blocks per 15-bit symbol) cover every block; no DC scan at all.
 * libjpeg buffers the coefficients of the whole image (128 bytes per 8x8 block and component). */
static void make_progressive_jpeg(buf *b, unsigned w, unsigned h) {
    put_be16(b, 0xFFD8);
    put_be16(b, 0xFFDB), put_be16(b, 67), put_u8(b, 0); /* DQT: table 0, all 1 */
    for (int i = 0; i < 64; i++) put_u8(b, 1);
    put_be16(b, 0xFFC2), put_be16(b, 17), put_u8(b, 8), put_be16(b, h), put_be16(b, w), put_u8(b, 3);
    for (unsigned c = 1; c <= 3; c++) put_u8(b, c), put_u8(b, 0x11), put_u8(b, 0);
    put_be16(b, 0xFFC4), put_be16(b, 20), put_u8(b, 0x10); /* DHT: AC table 0, one code "0" = EOB14 */
    put_u8(b, 1);
    for (int i = 1; i < 16; i++) put_u8(b, 0);
    put_u8(b, 0xE0);
    put_be16(b, 0xFFDA), put_be16(b, 8), put_u8(b, 1), put_u8(b, 1), put_u8(b, 0x00);
    put_u8(b, 1), put_u8(b, 63), put_u8(b, 0); /* Ss 1, Se 63, Ah 0, Al 0 */
    uint64_t blocks = (uint64_t)((w + 7) / 8) * ((h + 7) / 8);
    bits e = {b, 0, 0, 1};
    for (uint64_t done = 0; done < blocks; done += 32767) put_code(&e, 0, 1), put_code(&e, 0x3FFF, 14);
    flush_bits(&e, 1);
    put_be16(b, 0xFFD9);
}

/* The small RGB image the IDAT cases carry, and its raw scanlines (filter 0), Adam7 or not. */
#define SMALL_W 7
#define SMALL_H 5

static void small_pixel(int x, int y, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)(x * 36), rgb[1] = (uint8_t)(y * 60), rgb[2] = (uint8_t)(200 - 9 * (x + y));
}

static void small_raw(buf *raw, int interlaced) {
    static const int r0[7] = {0, 0, 4, 0, 2, 0, 1}, c0[7] = {0, 4, 0, 2, 0, 1, 0};
    static const int dr[7] = {8, 8, 8, 4, 4, 2, 2}, dc[7] = {8, 8, 4, 4, 2, 2, 1};
    for (int p = 0; p < (interlaced ? 7 : 1); p++) {
        int ry = interlaced ? r0[p] : 0, cx = interlaced ? c0[p] : 0;
        int sy = interlaced ? dr[p] : 1, sx = interlaced ? dc[p] : 1;
        if (cx >= SMALL_W) continue; /* an empty pass has no scanlines */
        for (int y = ry; y < SMALL_H; y += sy) {
            put_u8(raw, 0);
            for (int x = cx; x < SMALL_W; x += sx) {
                uint8_t rgb[3];
                small_pixel(x, y, rgb);
                put(raw, rgb, 3);
            }
        }
    }
}

enum { TAIL_IEND, TAIL_JUNK, TAIL_EOF };
enum { STREAM_ENDS, STREAM_NEVER_ENDS, STREAM_ENDS_AT_ROW_2, STREAM_ENDS_MID_WAY };

/* 4. The small image with its zlib stream and what follows it varied; bad_crc breaks the IDAT CRC. */
static void make_idat_case(buf *b, int interlaced, int stream, int tail, int bad_crc) {
    put_ihdr(b, SMALL_W, SMALL_H, 8, 2, interlaced);
    buf raw = {0}, z = {0};
    small_raw(&raw, interlaced);
    size_t n = stream == STREAM_ENDS_AT_ROW_2 ? 2 * (1 + 3 * SMALL_W) /* two scanlines */
               : stream == STREAM_ENDS_MID_WAY ? raw.n / 2
                                               : raw.n;
    put_zlib_stored(&z, raw.p, n, stream != STREAM_NEVER_ENDS);
    put_chunk(b, "IDAT", z.p, (uint32_t)z.n, bad_crc ? 0x5A5A5A5Au : 0);
    if (tail == TAIL_IEND) put_chunk(b, "IEND", NULL, 0, 0);
    if (tail == TAIL_JUNK) put(b, "junk after the image data\n", 26);
    free(raw.p);
    free(z.p);
}

/* 5. A valid image with a tEXt chunk before IDAT whose CRC is wrong: Pillow refuses it, and so do we. */
static void make_bad_text_crc(buf *b) {
    buf img = {0};
    make_idat_case(&img, 0, STREAM_ENDS, TAIL_IEND, 0);
    put(b, img.p, 33); /* signature + IHDR */
    put_chunk(b, "tEXt", (const uint8_t *)"Comment\0hello", 13, 1);
    put(b, img.p + 33, img.n - 33);
    free(img.p);
}

/* ------------------------------------------------------------------ the committed corpus */

static char *regression_dir(void) {
    const char *env = getenv("IS_REGRESSION_DIR");
    if (env && *env) return strdup(env);
    char *dir = strdup(__FILE__); /* CMake compiles tests/test_image_limits.c by its absolute path */
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    char *out = is_path_join(slash ? dir : ".", "regressions/images");
    free(dir);
    return out;
}

/* The committed copy must hold exactly these bytes (or is written, with IS_WRITE_REGRESSIONS=1). */
static void check_committed(const char *name, const buf *b) {
    char *dir = regression_dir(), *path = is_path_join(dir, name);
    const char *write = getenv("IS_WRITE_REGRESSIONS");
    if (write && !strcmp(write, "1")) {
        th_ok(is_write_file_atomic(path, b->p, b->n), path);
    } else {
        char *data = NULL;
        size_t n = 0;
        is_error *e = is_read_file(path, (size_t)1 << 24, &data, &n);
        th_check(!e && n == b->n && !memcmp(data, b->p, n),
                 "%s: missing or not what test_image_limits builds (%s); rerun it with IS_WRITE_REGRESSIONS=1", path,
                 e ? is_error_message(e) : "different bytes");
        is_error_free(e);
        free(data);
    }
    free(path);
    free(dir);
}

/* ------------------------------------------------------------------ measured loads */

typedef struct {
    double seconds;
    long rss_kb;  /* growth of the peak resident set during the load */
    int ok;       /* the load ran and reported back */
    int failed;   /* is_image_load returned an error */
    char message[IS_ERROR_MAX_BYTES];
} load_stats;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void child_load(const char *path, int fd) {
    load_stats st;
    memset(&st, 0, sizeof st);
    alarm(60); /* a hung decoder kills the child, not the test */
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    is_image img;
    is_error *e = is_image_load(path, &img);
    st.seconds = now_s() - t0;
    getrusage(RUSAGE_SELF, &r1);
    st.rss_kb = r1.ru_maxrss - r0.ru_maxrss;
    st.ok = 1;
    st.failed = e != NULL;
    snprintf(st.message, sizeof st.message, "%s", e ? is_error_message(e) : "decoded");
    is_error_free(e);
    is_image_free(&img);
    _exit(write(fd, &st, sizeof st) == (ssize_t)sizeof st ? 0 : 1);
}

/* is_image_load(path) in a child process: its own peak RSS, and a runaway load cannot take the test. */
static load_stats measure_load(const char *path) {
    load_stats st;
    memset(&st, 0, sizeof st);
    int fd[2];
    if (pipe(fd) != 0) return st;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        child_load(path, fd[1]);
    }
    close(fd[1]);
    size_t got = 0;
    while (pid > 0 && got < sizeof st) {
        ssize_t k = read(fd[0], (char *)&st + got, sizeof st - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    if (got != sizeof st) {
        memset(&st, 0, sizeof st);
        snprintf(st.message, sizeof st.message, "the load died (wait status %d)", status);
    }
    return st;
}

/* ------------------------------------------------------------------ the checks */

typedef struct {
    const char *name;  /* file name under tests/regressions/images/ */
    const char *error; /* expected error text, or NULL: decodes to the small test image */
} repro;

static void check_small_image(const char *path, const char *name) {
    is_image img;
    if (!th_ok(is_image_load(path, &img), name)) return;
    int same = img.width == SMALL_W && img.height == SMALL_H;
    for (int y = 0; same && y < SMALL_H; y++)
        for (int x = 0; x < SMALL_W; x++) {
            uint8_t rgb[3];
            small_pixel(x, y, rgb);
            same = same && !memcmp(img.rgb + ((size_t)y * SMALL_W + x) * 3, rgb, 3);
        }
    th_check(same, "%s: decodes to the %dx%d image it carries", name, SMALL_W, SMALL_H);
    is_image_free(&img);
}

/* Write, compare with the committed copy, load within the memory limit, check the outcome. */
static void check_repro(const repro *r, const buf *b) {
    check_committed(r->name, b);
    char *path = is_path_join(th_tmpdir(), r->name);
    th_ok(is_write_file_atomic(path, b->p, b->n), path);
    load_stats st = measure_load(path);
    printf("  %-44s %7zu bytes  %7.4f s  %+5ld MB  %s\n", r->name, b->n, st.seconds, st.rss_kb / 1024, st.message);
    th_check(st.ok, "%s: %s", r->name, st.message);
    th_check(st.rss_kb < MAX_RSS_MB * 1024L, "%s: took %ld MB (at most %d)", r->name, st.rss_kb / 1024, MAX_RSS_MB);
    if (r->error) {
        th_check(st.failed && strstr(st.message, r->error) && strstr(st.message, r->name),
                 "%s: expected an error naming the file and saying '%s', got: %s", r->name, r->error, st.message);
    } else {
        th_check(!st.failed, "%s: expected to decode, got: %s", r->name, st.message);
        check_small_image(path, r->name);
    }
    free(path);
}

static void run_repro(const char *name, const char *error, void (*make)(buf *)) {
    buf b = {0};
    make(&b);
    repro r = {name, error};
    check_repro(&r, &b);
    free(b.p);
}

static void make_text_bomb_tEXt(buf *b) { make_text_bomb(b, "tEXt"); }
static void make_text_bomb_zTXt(buf *b) { make_text_bomb(b, "zTXt"); }
static void make_text_bomb_iTXt(buf *b) { make_text_bomb(b, "iTXt"); }
static void make_jpeg_bomb(buf *b) { make_progressive_jpeg(b, 16384, 16384); }
static void make_jpeg_coefficients(buf *b) { make_progressive_jpeg(b, 12000, 12000); }
static void make_never_ends_junk(buf *b) { make_idat_case(b, 0, STREAM_NEVER_ENDS, TAIL_JUNK, 0); }
static void make_never_ends_iend(buf *b) { make_idat_case(b, 0, STREAM_NEVER_ENDS, TAIL_IEND, 0); }
static void make_never_ends_eof(buf *b) { make_idat_case(b, 0, STREAM_NEVER_ENDS, TAIL_EOF, 0); }
static void make_never_ends_adam7(buf *b) { make_idat_case(b, 1, STREAM_NEVER_ENDS, TAIL_JUNK, 0); }
static void make_bad_idat_crc(buf *b) { make_idat_case(b, 0, STREAM_ENDS, TAIL_IEND, 1); }
static void make_bad_idat_crc_adam7(buf *b) { make_idat_case(b, 1, STREAM_ENDS, TAIL_IEND, 1); }
static void make_ends_at_row(buf *b) { make_idat_case(b, 0, STREAM_ENDS_AT_ROW_2, TAIL_IEND, 0); }
static void make_ends_mid_row(buf *b) { make_idat_case(b, 0, STREAM_ENDS_MID_WAY, TAIL_IEND, 0); }
static void make_ends_early_adam7(buf *b) { make_idat_case(b, 1, STREAM_ENDS_MID_WAY, TAIL_IEND, 0); }

static void test_reproducers(void) {
    printf("reproducers (each in a child process; limit %d MB):\n", MAX_RSS_MB);
    /* 1. text chunks declaring 2 GB: skipped unread, so only the missing bytes are an error */
    run_repro("png-text-chunk-2gb-tEXt.png", "truncated PNG", make_text_bomb_tEXt);
    run_repro("png-text-chunk-2gb-zTXt.png", "truncated PNG", make_text_bomb_zTXt);
    run_repro("png-text-chunk-2gb-iTXt.png", "truncated PNG", make_text_bomb_iTXt);
    /* 2. decompression bombs: refused from the header */
    run_repro("png-bomb-16384x16384.png", "268435456 pixels, more than the limit of 178956970", make_png_bomb);
    run_repro("jpeg-progressive-bomb-16384x16384.jpg", "268435456 pixels, more than the limit of 178956970",
              make_jpeg_bomb);
    run_repro("jpeg-progressive-12000x12000.jpg",
              "needs 864000000 bytes (824 MiB) for its DCT coefficients, more than the 536870910 (512 MiB)",
              make_jpeg_coefficients);
    /* 3. what follows the last row does not matter (Pillow never reads it); a short stream does */
    run_repro("png-idat-never-ends-then-junk.png", NULL, make_never_ends_junk);
    run_repro("png-idat-never-ends-then-iend.png", NULL, make_never_ends_iend);
    run_repro("png-idat-never-ends-then-eof.png", NULL, make_never_ends_eof);
    run_repro("png-idat-never-ends-adam7.png", NULL, make_never_ends_adam7);
    run_repro("png-idat-bad-crc.png", NULL, make_bad_idat_crc);
    run_repro("png-idat-bad-crc-adam7.png", NULL, make_bad_idat_crc_adam7);
    /* Pillow keeps the rows a stream ending on a row boundary leaves black; we refuse (LIMITS.md) */
    run_repro("png-idat-stream-ends-after-row-2.png", "Not enough image data", make_ends_at_row);
    run_repro("png-idat-stream-ends-mid-row.png", "Not enough image data", make_ends_mid_row);
    run_repro("png-idat-stream-ends-early-adam7.png", "Not enough image data", make_ends_early_adam7);
    run_repro("png-text-bad-crc.png", "CRC error", make_bad_text_crc);
}

/* The bomb messages say how to raise the limit. */
static void test_messages(void) {
    buf b = {0};
    make_png_bomb(&b);
    is_image img;
    th_fails(is_png_decode("bomb.png", b.p, b.n, &img, NULL), "raise it with is_set_max_image_pixels()", "bomb advice");
    free(b.p);
}

static is_error *load_golden(const char *rel, is_image *img) {
    char *path = th_golden_path(rel);
    is_error *e = is_image_load(path, img);
    free(path);
    if (!e) is_image_free(img);
    return e;
}

/* is_set_max_image_pixels: the default is Pillow's, 0 and huge values mean the ceiling, and the limit
 * is exact (a 50x40 image passes at 2000 pixels and not at 1999). */
static void test_setter(void) {
    is_image img;
    th_check(is_get_max_image_pixels() == IS_MAX_IMAGE_PIXELS_DEFAULT && IS_MAX_IMAGE_PIXELS_DEFAULT == 178956970u,
             "default pixel limit is Pillow's 2 * 89478485");
    is_set_max_image_pixels(0);
    th_check(is_get_max_image_pixels() == (uint64_t)IS_IMAGE_MAX_PIXELS, "0 means the ceiling");
    th_fails(is_image_check_size("huge.png", 20000, 20000), "400000000 pixels, more than 268435456, the most any",
             "over the ceiling");
    is_set_max_image_pixels(UINT64_MAX);
    th_check(is_get_max_image_pixels() == (uint64_t)IS_IMAGE_MAX_PIXELS, "no limit above the ceiling");
    is_set_max_image_pixels(2000);
    th_ok(load_golden("images/tiny_50x40.png", &img), "50x40 PNG at a limit of 2000 pixels");
    is_set_max_image_pixels(1999);
    th_fails(load_golden("images/tiny_50x40.png", &img), "2000 pixels, more than the limit of 1999",
             "PNG over the limit");
    th_fails(load_golden("images/baseline_q80_448x336.jpg", &img), "150528 pixels, more than the limit of 1999",
             "JPEG over the limit");
    is_set_max_image_pixels(IS_MAX_IMAGE_PIXELS_DEFAULT);
}

/* The coefficient budget is exact: the 256x240 progressive 4:4:4 golden needs 3 x 32 x 30 blocks of
 * 128 bytes = 368640 bytes, 3 bytes per pixel of a 122880-pixel limit. */
static void test_coefficient_budget(void) {
    is_image img;
    is_set_max_image_pixels(122880);
    th_ok(load_golden("images/progressive_q85_444_256x240.jpg", &img), "progressive JPEG within its budget");
    is_set_max_image_pixels(122879);
    th_fails(load_golden("images/progressive_q85_444_256x240.jpg", &img), "for its DCT coefficients",
             "progressive JPEG over its budget");
    is_set_max_image_pixels(448 * 336); /* a progressive 448x336 would need 903168 bytes; baseline needs none */
    th_ok(load_golden("images/baseline_q80_448x336.jpg", &img), "baseline JPEG at exactly its pixel count");
    is_set_max_image_pixels(IS_MAX_IMAGE_PIXELS_DEFAULT);
}

int main(void) {
    test_setter();
    test_coefficient_budget();
    test_messages();
    test_reproducers();
    return th_done();
}
