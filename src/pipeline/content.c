/* InstantStyle content subtraction (IPAdapterXL.generate with neg_content_prompt):
 * image_embeds -= scale * pooled text_encoder_2 embedding of the content prompt. */
#include "core/error.h"

is_error *is_content_subtract(float *image_embeds, int image_dim, const float *content_embeds, int content_dim,
                              float scale) {
    if (image_dim != content_dim)
        return is_errorf(IS_E_SHAPE,
                         "content subtraction: the image encoder's projection size %d does not match text_encoder_2's "
                         "projection size %d (the IP-Adapter's image encoder and the SDXL model do not belong together)",
                         image_dim, content_dim);
    for (int i = 0; i < image_dim; i++) image_embeds[i] -= scale * content_embeds[i];
    return NULL;
}
