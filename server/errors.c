/* Error values of the server: what a 4xx/5xx answer says, and the JSON body check every POST starts with.
 * No HTTP here (the request checks and their fuzz harness use it without libmicrohttpd). */
#include <stdarg.h>
#include <stdio.h>

#include "server/server_internal.h"

const char *srv_status_code(int status) {
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "cancelled";
    case 413: return "payload_too_large";
    case 503: return "queue_full";
    default: return status >= 500 ? "internal_error" : "error";
    }
}

int srv_fail(srv_err *e, int status, const char *field, const char *fmt, ...) {
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", srv_status_code(status));
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

cJSON *srv_parse_body(const char *body, size_t n, srv_err *e) {
    if (!body || !n) {
        srv_fail(e, 400, "", "expected a JSON object body");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    if (!j) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        srv_fail(e, 400, "", "malformed JSON near byte %zu", at);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        srv_fail(e, 400, "", "expected a JSON object body");
        return NULL;
    }
    return j;
}

