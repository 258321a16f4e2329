/* Style images, built twice: fuzz_png (FZ_JPEG 0) feeds the input to is_png_decode, fuzz_jpeg (FZ_JPEG 1)
 * to is_jpeg_decode, the in-memory decoders behind is_image_load. A decoded image must be within the
 * side limit of vision/image.h and the pixel limit set below, name a Pillow mode and have readable
 * pixels. Images of at most 256x256 pixels must also decode the same through is_image_load_info from a
 * file, and go through the CLIP preprocessing (resize + centre crop + normalise, as the image encoder
 * receives them, here to 32x32); larger ones skip both, which keeps the harness fast. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "vision/clip_preprocess.h"
#include "vision/image.h"

#ifndef FZ_JPEG
#error "define FZ_JPEG to 0 (PNG) or 1 (JPEG)"
#endif

/* Larger images are only decoded: the file-API comparison and the preprocessing would dominate the time. */
#define PREPROCESS_MAX_PIXELS (256 * 256)
/* The pixel limit while fuzzing (is_set_max_image_pixels). */
#define FZ_MAX_PIXELS ((uint64_t)1 << 24)
/* Side of the CLIP preprocessing's result (shortest edge and crop). */
#define FZ_CLIP_SIZE 32

static const char *path;
static float *pixel_values;
static is_clip_preproc pp;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    path = fz_path(FZ_JPEG ? "style.jpg" : "style.png");
    pixel_values = malloc(3 * FZ_CLIP_SIZE * FZ_CLIP_SIZE * sizeof(float));
    if (!pixel_values) fz_fail("out of memory");
    /* CLIPImageProcessor at 32 instead of 224: the same resize and crop code, 49 times fewer output pixels
     * (at 224 the preprocessing took 90% of the time of a small image). */
    is_clip_preproc_defaults(&pp);
    pp.shortest_edge = pp.crop_h = pp.crop_w = FZ_CLIP_SIZE;
    /* 16.7 Mpixels instead of Pillow's 179: the same checks, but a mutated header declaring a huge image
     * costs milliseconds instead of seconds (and 50 MB instead of 537), so the fuzzer keeps its pace. */
    is_set_max_image_pixels(FZ_MAX_PIXELS);
    return 0;
}

static void check_mode(const char *mode) {
    static const char *const modes[] = {"RGB", "RGBA", "L", "LA", "P", "PA", "I", "I;16", "1", "CMYK", "YCbCr", NULL};
    if (memchr(mode, 0, sizeof ((is_image_info *)0)->mode) == NULL) fz_fail("mode is not NUL-terminated");
    for (int i = 0; modes[i]; i++)
        if (!strcmp(mode, modes[i])) return;
    fz_fail("unknown Pillow mode '%s'", mode);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    is_image img;
    is_image_info info;
    memset(&img, 0, sizeof img);
    memset(&info, 0, sizeof info);
    is_error *err = FZ_JPEG ? is_jpeg_decode("fuzz.jpg", data, size, &img, &info)
                            : is_png_decode("fuzz.png", data, size, &img, &info);
    if (fz_error(err)) {
        if (img.rgb) fz_fail("failed decode left pixels behind (%dx%d)", img.width, img.height);
        return 0;
    }
    if (img.width < 1 || img.height < 1 || img.width > IS_IMAGE_MAX_SIDE || img.height > IS_IMAGE_MAX_SIDE ||
        (uint64_t)img.width * (uint64_t)img.height > FZ_MAX_PIXELS || !img.rgb)
        fz_fail("decoded %dx%d image (pixels %p)", img.width, img.height, (void *)img.rgb);
    check_mode(info.mode);
    size_t bytes = (size_t)img.width * (size_t)img.height * 3;
    fz_touch(img.rgb, bytes);

    if ((long long)img.width * img.height > PREPROCESS_MAX_PIXELS) {
        is_image_free(&img);
        return 0;
    }
    /* The same bytes through the file API give the same image when they start with the format's signature
     * (is_image_load dispatches on it, as Pillow's _accept does: PNG's 8 bytes, FF D8 FF for JPEG; libjpeg
     * itself also takes FF D8 followed by junk before the next marker), and an error otherwise. */
    static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
    int signed_ok = FZ_JPEG ? size >= 3 && !memcmp(data, jpeg_magic, 3) : size >= 8 && !memcmp(data, magic, 8);
    fz_write(path, data, size);
    is_image again;
    is_image_info again_info;
    is_error *file_err = is_image_load_info(path, &again, &again_info);
    if (!signed_ok) {
        if (!fz_error(file_err)) fz_fail("is_image_load accepted a file without the signature");
        is_image_free(&again);
        is_image_free(&img);
        return 0;
    }
    if (fz_error(file_err)) fz_fail("decodes in memory but not from a file");
    if (again.width != img.width || again.height != img.height || memcmp(again.rgb, img.rgb, bytes) ||
        strcmp(again_info.mode, info.mode))
        fz_fail("file and memory decodes differ");
    is_image_free(&again);

    fz_error(is_clip_preprocess(&pp, &img, FZ_CLIP_SIZE, pixel_values));
    is_image_free(&img);
    return 0;
}
