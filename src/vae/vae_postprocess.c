/* diffusers VaeImageProcessor.postprocess: (x/2 + 0.5).clamp(0, 1) ("pt"), then for "pil"
 * NHWC, (x * 255).round() with numpy's round-half-to-even, and uint8. */
#include <math.h>

#include "instantstyle.h"

void is_image_postprocess(float *image, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = image[i] / 2.0f + 0.5f;
        image[i] = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; /* NaN passes through, as in torch.clamp */
    }
}

void is_image_to_u8_hwc(const float *image01, int H, int W, uint8_t *rgb) {
    int64_t plane = (int64_t)H * W;
    for (int64_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++) {
            float x = nearbyintf(image01[c * plane + p] * 255.0f); /* default rounding: half to even */
            rgb[p * 3 + c] = (uint8_t)(x >= 0.0f && x <= 255.0f ? x : x > 255.0f ? 255.0f : 0.0f); /* NaN -> 0 */
        }
}
