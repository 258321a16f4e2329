/* diffusers' VaeImageProcessor for the images of image-based generation, on decoded 8-bit RGB:
 * resize to the output size with Pillow's LANCZOS when the size differs, then
 *   init image:    2 * (u8 / 255) - 1         (the VAE's input range; do_normalize)
 *   control image: u8 / 255                   (ControlNet input, not normalised)
 *   mask:          Pillow convert("L") of the resized pixels, / 255, binarised at 0.5 (1 = repaint).
 * All float32 as numpy / torch compute them. */
#ifndef IS_VISION_IMAGE_PROCESSOR_H
#define IS_VISION_IMAGE_PROCESSOR_H

#include "core/error.h"

/* get_default_height_width: the image's size rounded down to a multiple of `multiple`. */
void is_image_default_size(const is_image *img, int multiple, int *width, int *height);

/* out [3, height, width] */
is_error *is_preprocess_init_image(const is_image *img, int width, int height, float *out);
is_error *is_preprocess_control_image(const is_image *img, int width, int height, float *out);
/* out [height, width], values 0 or 1 */
is_error *is_preprocess_mask(const is_image *img, int width, int height, float *out);

#endif
