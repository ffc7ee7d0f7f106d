// c/Prefix: prepends the `prefix` setting to every data IP; brackets pass through unchanged.
//
// Written against the bindings that `wit-bindgen c` generates from wit/ (flowd_component.h);
// components/build-c.sh generates them, compiles this file and makes the component.
//
// Memory rules of those bindings, which every C component follows:
// * What an import returns (an IP from `recv`, the value of `read-config`, a port error) is
//   ours: free it with the matching `*_free` function.
// * What we pass to an import (a name, an IP to `send`) stays ours: the host copies it.
// * What an export returns (`describe`'s info, `run`'s error message) must be malloc'ed: the
//   bindings free it after the host has copied it.
// * Port handles are ours too: drop them with `*_drop_own` when done.
//
// No libc I/O here: the component imports nothing but flowd's interfaces, so no WASI.

#include <stdlib.h>
#include <string.h>

#include "flowd_component.h"

typedef flowd_component_string_t string_t;
typedef flowd_component_list_u8_t bytes_t;
typedef flowd_component_types_port_info_t port_info_t;
typedef flowd_component_ports_port_error_t port_error_t;

// --- describe ---------------------------------------------------------------------------------

static void port(port_info_t *p, const char *name, const char *data_type, const char *description,
                 bool required) {
    flowd_component_string_dup(&p->name, name);
    flowd_component_string_dup(&p->data_type, data_type);
    flowd_component_string_dup(&p->description, description);
    p->is_array = false;
    p->required = required;
}

void exports_flowd_component_describe(flowd_component_component_info_t *ret) {
    flowd_component_string_dup(&ret->name, "c/Prefix");
    flowd_component_string_dup(&ret->description, "Prepends a prefix to every data IP");
    flowd_component_string_dup(&ret->icon, "indent");

    ret->inports.len = 2;
    ret->inports.ptr = calloc(2, sizeof(port_info_t));
    ret->outports.len = 1;
    ret->outports.ptr = calloc(1, sizeof(port_info_t));
    if (!ret->inports.ptr || !ret->outports.ptr) abort();
    port(&ret->inports.ptr[0], "prefix", "string", "The bytes to put before each data IP", true);
    port(&ret->inports.ptr[1], "in", "all", "IPs to prefix; brackets pass through", false);
    port(&ret->outports.ptr[0], "out", "all", "The prefixed IPs", false);
}

// --- run --------------------------------------------------------------------------------------

// Sets `*err` to the concatenation of up to three parts (NULL parts are skipped) and returns
// false, so that `return fail(err, ...)` ends `run` with that error.
static bool fail(string_t *err, const char *a, const char *b, const string_t *c) {
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0, lc = c ? c->len : 0;
    err->len = la + lb + lc;
    err->ptr = malloc(err->len ? err->len : 1);
    if (!err->ptr) abort();
    if (la) memcpy(err->ptr, a, la);
    if (lb) memcpy(err->ptr + la, b, lb);
    if (lc) memcpy(err->ptr + la + lb, c->ptr, lc);
    return false;
}

// Ends `run` after a failed port call (`what` says which) and frees the error. A network that
// is stopping, or an outport closed downstream, ends the process normally.
static bool port_failed(string_t *err, const char *what, port_error_t *e) {
    bool ok = true;
    switch (e->tag) {
    case FLOWD_COMPONENT_TYPES_PORT_ERROR_STOPPED:
    case FLOWD_COMPONENT_TYPES_PORT_ERROR_CLOSED:
        break;
    case FLOWD_COMPONENT_TYPES_PORT_ERROR_UNKNOWN_PORT:
        ok = fail(err, what, ": unknown port ", &e->val.unknown_port);
        break;
    case FLOWD_COMPONENT_TYPES_PORT_ERROR_INVALID_BATCH:
        ok = fail(err, what, ": invalid batch: ", &e->val.invalid_batch);
        break;
    default:
        ok = fail(err, what, ": port error", NULL);
    }
    flowd_component_ports_port_error_free(e);
    return ok;
}

// Copies the prefix and the payload into `*buf` (grown as needed, reused across IPs).
static bool prefixed(const bytes_t *prefix, const bytes_t *data, uint8_t **buf, size_t *cap,
                     bytes_t *out) {
    size_t n = prefix->len + data->len;
    if (n > *cap) {
        uint8_t *grown = realloc(*buf, n);
        if (!grown) return false;
        *buf = grown;
        *cap = n;
    }
    if (prefix->len) memcpy(*buf, prefix->ptr, prefix->len);
    if (data->len) memcpy(*buf + prefix->len, data->ptr, data->len);
    out->ptr = *buf;
    out->len = n;
    return true;
}

bool exports_flowd_component_run(string_t *err) {
    port_error_t perr;
    string_t name;

    // The setting: the first data IP of the `prefix` port (its IIP).
    flowd_component_option_list_u8_t prefix;
    flowd_component_string_set(&name, "prefix");
    if (!flowd_component_ports_read_config(&name, &prefix, &perr))
        return port_failed(err, "c/Prefix: reading `prefix`", &perr);
    if (!prefix.is_some) return fail(err, "c/Prefix: no `prefix` given", NULL, NULL);

    flowd_component_ports_own_inport_t in;
    flowd_component_ports_own_outport_t out;
    flowd_component_string_set(&name, "in");
    if (!flowd_component_ports_open_inport(&name, NULL, &in, &perr)) {
        flowd_component_option_list_u8_free(&prefix);
        return port_failed(err, "c/Prefix: opening `in`", &perr);
    }
    flowd_component_string_set(&name, "out");
    if (!flowd_component_ports_open_outport(&name, NULL, &out, &perr)) {
        flowd_component_ports_inport_drop_own(in);
        flowd_component_option_list_u8_free(&prefix);
        return port_failed(err, "c/Prefix: opening `out`", &perr);
    }
    flowd_component_ports_borrow_inport_t inb = flowd_component_ports_borrow_inport(in);
    flowd_component_ports_borrow_outport_t outb = flowd_component_ports_borrow_outport(out);

    uint8_t *buf = NULL;
    size_t cap = 0;
    bool ok = true;
    for (;;) {
        flowd_component_ports_option_ip_t ip;
        if (!flowd_component_ports_method_inport_recv(inb, &ip, &perr)) {
            ok = port_failed(err, "c/Prefix: receiving on `in`", &perr);
            break;
        }
        if (!ip.is_some) break; // end of stream

        bool sent;
        if (ip.val.tag == FLOWD_COMPONENT_TYPES_IP_DATA) {
            flowd_component_ports_ip_t data = {.tag = FLOWD_COMPONENT_TYPES_IP_DATA};
            if (!prefixed(&prefix.val, &ip.val.val.data, &buf, &cap, &data.val.data)) {
                flowd_component_ports_option_ip_free(&ip);
                ok = fail(err, "c/Prefix: out of memory", NULL, NULL);
                break;
            }
            sent = flowd_component_ports_method_outport_send(outb, &data, &perr);
        } else {
            sent = flowd_component_ports_method_outport_send(outb, &ip.val, &perr); // a bracket
        }
        flowd_component_ports_option_ip_free(&ip);
        if (!sent) {
            ok = port_failed(err, "c/Prefix: sending on `out`", &perr);
            break;
        }
    }

    free(buf);
    flowd_component_option_list_u8_free(&prefix);
    flowd_component_ports_outport_drop_own(out);
    flowd_component_ports_inport_drop_own(in);
    return ok;
}
