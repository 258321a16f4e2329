/* Base64 both ways; the decoder is lenient where clients differ (padding, line breaks, data URLs) and
 * exact where it matters (any other character is an error at its offset). */
#include "server/base64.h"

#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const uint8_t *data, size_t n) {
    size_t m = (n + 2) / 3 * 4;
    char *out = malloc(m + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = alphabet[(v >> 6) & 63], *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = alphabet[(v >> 6) & 63], *o++ = '=';
    }
    *o = 0;
    return out;
}

static int value_of(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* '-' and '_': the URL-safe alphabet */
    if (c == '/' || c == '_') return 63;
    return -1;
}

int b64_decode(const char *text, size_t len, uint8_t **out, size_t *n, size_t *bad_at) {
    *out = NULL, *n = 0, *bad_at = 0;
    size_t start = 0;
    if (len >= 5 && !memcmp(text, "data:", 5)) { /* data URL: after the first comma */
        const char *comma = memchr(text, ',', len);
        if (!comma) {
            *bad_at = len;
            return -1;
        }
        start = (size_t)(comma - text) + 1;
    }
    uint8_t *buf = malloc((len - start) / 4 * 3 + 3);
    if (!buf) return -2;
    size_t o = 0, pad = 0;
    uint32_t acc = 0;
    int have = 0;
    for (size_t i = start; i < len; i++) {
        char c = text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') { /* padding: only at the end of a group of 2 or 3 */
            if (have < 2 || pad + (size_t)have >= 4) {
                free(buf);
                *bad_at = i;
                return -1;
            }
            pad++;
            continue;
        }
        int v = value_of(c);
        if (v < 0 || pad) {
            free(buf);
            *bad_at = i;
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++have == 4) {
            buf[o++] = (uint8_t)(acc >> 16), buf[o++] = (uint8_t)(acc >> 8), buf[o++] = (uint8_t)acc;
            acc = 0, have = 0;
        }
    }
    if (have == 1) {
        free(buf);
        *bad_at = len;
        return -1;
    }
    if (have == 2) buf[o++] = (uint8_t)(acc >> 4);
    if (have == 3) buf[o++] = (uint8_t)(acc >> 10), buf[o++] = (uint8_t)(acc >> 2);
    *out = buf, *n = o;
    return 0;
}
