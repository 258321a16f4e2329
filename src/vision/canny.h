/* Canny edges as OpenCV 4.6's cv2.Canny (cases/canny/README.md), with the per-pixel gradient it
 * chose, for the tests. */
#ifndef IS_VISION_CANNY_H
#define IS_VISION_CANNY_H

#include <stdint.h>

#include "core/error.h"

/* is_canny, also giving (each optional, NULL: not wanted; width*height values, rows top to bottom)
 * the Sobel dx, dy of the channel chosen per pixel and its magnitude |dx| + |dy|. */
is_error *is_canny_ex(const is_image *rgb, double low, double high, uint8_t *edges, int16_t *dx, int16_t *dy,
                      int32_t *mag);

#endif
