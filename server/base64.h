/* Base64 (RFC 4648, standard alphabet) for images in JSON bodies. */
#ifndef IS_SERVER_BASE64_H
#define IS_SERVER_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded text of n bytes, NUL-terminated (malloc'ed; NULL when out of memory). */
char *b64_encode(const uint8_t *data, size_t n);
/* Decode text[0..len): padding optional, whitespace (CR, LF, space, tab) skipped, a "data:...;base64,"
 * prefix skipped. Returns 0 and *out (malloc'ed) / *n, or -1 with *bad_at the offset of the first
 * character that is not base64 (or len for a truncated group), or -2 when out of memory. */
int b64_decode(const char *text, size_t len, uint8_t **out, size_t *n, size_t *bad_at);

#endif
