/*
 * native/Upper: upper-cases the ASCII letters of every data IP; brackets pass unchanged.
 * A native shared-object component in C, built against guest-sdk/include/flowd.h:
 *
 *   gcc -shared -fPIC -O2 -I guest-sdk/include components/native/c/upper.c -o libupper.so
 *
 * It runs with flowd's full rights: load it only with --allow-native.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "flowd.h"

static int32_t run(const flowd_host_api *api, flowd_process *process) {
    int32_t in = api->inport(process, "in", -1);
    int32_t out = api->outport(process, "out", -1);
    if (in < 0 || out < 0) {
        const char *message = "native/Upper: ports 'in' and 'out' are missing";
        api->fail(process, message, strlen(message));
        return 1;
    }
    uint8_t *buffer = NULL;
    size_t capacity = 0;
    int32_t status = FLOWD_OK;
    flowd_ip ip;
    while ((status = api->recv(process, in, &ip)) == FLOWD_OK) {
        if (ip.kind == FLOWD_IP_DATA && ip.len > 0) {
            if (ip.len > capacity) {
                uint8_t *grown = realloc(buffer, ip.len);
                if (grown == NULL) {
                    free(buffer);
                    const char *message = "native/Upper: out of memory";
                    api->fail(process, message, strlen(message));
                    return 1;
                }
                buffer = grown;
                capacity = ip.len;
            }
            for (size_t i = 0; i < ip.len; i++) {
                buffer[i] = (uint8_t)toupper(ip.data[i]);
            }
            flowd_ip upper = {FLOWD_IP_DATA, buffer, ip.len};
            status = api->send(process, out, &upper);
        } else {
            status = api->send(process, out, &ip);
        }
        if (status != FLOWD_OK) {
            break;
        }
    }
    free(buffer);
    /* End of input, or nobody downstream, or the network stops: all normal ends. */
    return status == FLOWD_ERROR ? 1 : 0;
}

static const flowd_port inports[] = {
    {"in", "string", "text to upper-case", 0, 1},
};
static const flowd_port outports[] = {
    {"out", "string", "the text in upper case", 0, 0},
};
static const flowd_component component = {
    FLOWD_ABI_VERSION,
    "native/Upper",
    "Upper-cases ASCII letters (a native C component)",
    "font",
    inports,
    1,
    outports,
    1,
    run,
};

const flowd_component *flowd_component_v1(void) { return &component; }
