/*
 * native/Passthrough: forwards every IP, brackets included, unchanged. The smallest native
 * shared-object component, and the .so stage of the component-kinds benchmark:
 *
 *   gcc -shared -fPIC -O2 -I guest-sdk/include components/native/c/passthrough.c \
 *       -o libpassthrough.so
 *
 * It runs with flowd's full rights: load it only with --allow-native.
 */
#include "flowd.h"

static int32_t run(const flowd_host_api *api, flowd_process *process) {
    int32_t in = api->inport(process, "in", -1);
    int32_t out = api->outport(process, "out", -1);
    if (in < 0 || out < 0) {
        return 1;
    }
    int32_t status;
    flowd_ip ip;
    while ((status = api->recv(process, in, &ip)) == FLOWD_OK) {
        if ((status = api->send(process, out, &ip)) != FLOWD_OK) {
            break;
        }
    }
    /* End of input, or nobody downstream, or the network stops: all normal ends. */
    return status == FLOWD_ERROR ? 1 : 0;
}

static const flowd_port inports[] = {
    {"in", "all", "IPs to forward", 0, 0},
};
static const flowd_port outports[] = {
    {"out", "all", "the same IPs", 0, 0},
};
static const flowd_component component = {
    FLOWD_ABI_VERSION,
    "native/Passthrough",
    "Forwards every IP unchanged (a native C component)",
    "arrow-right",
    inports,
    1,
    outports,
    1,
    run,
};

const flowd_component *flowd_component_v1(void) { return &component; }
