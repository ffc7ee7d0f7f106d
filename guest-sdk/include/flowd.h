/*
 * flowd.h: the C ABI of flowd's native shared-object components, version 1.
 *
 * A shared object (.so) that exports `flowd_component_v1` is a flowd component: it describes
 * itself (name, ports) and runs as an actor that pulls IPs from its inports and pushes IPs to
 * its outports through the host functions it is given. This is the same model as the
 * WebAssembly world in wit/component.wit, without the sandbox.
 *
 * A NATIVE LIBRARY RUNS WITH ALL THE RIGHTS OF THE RUNTIME, AND A CRASH IN IT TAKES THE
 * RUNTIME DOWN. flowd loads one only when the operator passes --allow-native with its path.
 * Prefer a WebAssembly component unless you need what only native code can do.
 *
 * Rules:
 *  - Every function pointer in flowd_host_api is valid for the duration of `run`, and only on
 *    the thread that called `run`.
 *  - Strings passed to the host are UTF-8; lengths are in bytes; no NUL terminator is needed
 *    where a length is given.
 *  - An IP received with `recv` (its `data` pointer) is valid until the next call of `recv`
 *    on the same process, or until `run` returns.
 *  - `run` returns 0 when the component finished normally. Any other value fails the process;
 *    call `fail` first to say why.
 *  - Do not unwind (C++ exceptions, Rust panics) across this boundary.
 *
 * Compatibility: a host accepts a library whose `abi_version` equals the FLOWD_ABI_VERSION it
 * was built with. New versions get a new entry symbol (`flowd_component_v2`, ...).
 */
#ifndef FLOWD_H
#define FLOWD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLOWD_ABI_VERSION 1u

/* The kind of an information packet. */
enum flowd_ip_kind {
    FLOWD_IP_DATA = 0,  /* data */
    FLOWD_IP_OPEN = 1,  /* an opening bracket; `data` is its label (may be empty) */
    FLOWD_IP_CLOSE = 2, /* a closing bracket; `data` is its label (may be empty) */
};

/* An information packet: a kind and bytes. */
typedef struct flowd_ip {
    uint32_t kind;       /* enum flowd_ip_kind */
    const uint8_t *data; /* the payload; may be NULL when len is 0 */
    size_t len;          /* its length in bytes */
} flowd_ip;

/* What a port operation returned. */
enum flowd_status {
    FLOWD_OK = 0,      /* done: an IP was received or sent */
    FLOWD_END = 1,     /* recv: the inport has ended; send: every receiver has gone */
    FLOWD_STOPPED = 2, /* the network is stopping: return from run soon */
    FLOWD_ERROR = 3,   /* a bad argument (an unknown port handle, an invalid kind) */
};

/* The host's side of one running process; opaque. */
typedef struct flowd_process flowd_process;

/* The functions the host gives a component. */
typedef struct flowd_host_api {
    uint32_t abi_version; /* FLOWD_ABI_VERSION of the host */
    /* A handle for the plain inport or outport `name` (NUL-terminated), or -1 if the component
     * declared no such port. Array ports: `index` >= 0 selects the index; -1 for plain ports. */
    int32_t (*inport)(flowd_process *process, const char *name, int32_t index);
    int32_t (*outport)(flowd_process *process, const char *name, int32_t index);
    /* Waits for the next IP on an inport. FLOWD_OK fills *ip. */
    int32_t (*recv)(flowd_process *process, int32_t inport, flowd_ip *ip);
    /* Sends a copy of *ip on an outport; waits while the edge is full (backpressure). */
    int32_t (*send)(flowd_process *process, int32_t outport, const flowd_ip *ip);
    /* A line of output for the user (shown by `flowd run`, sent to protocol clients). */
    void (*output)(flowd_process *process, const char *text, size_t len);
    /* Sets the message of the failure `run` is about to return. */
    void (*fail)(flowd_process *process, const char *text, size_t len);
    /* Non-zero once the network is stopping: long computations should check it. */
    int32_t (*is_stopping)(flowd_process *process);
} flowd_host_api;

/* One port of the component. */
typedef struct flowd_port {
    const char *name;        /* lower case by convention: "in", "out" */
    const char *type;        /* noflo's types: "all", "string", "number", "boolean", ... */
    const char *description; /* what the port is for */
    uint32_t array;          /* non-zero: an array port (connections by index) */
    uint32_t required;       /* non-zero: the component needs it connected */
} flowd_port;

/* The component: what it is, and how it runs. All strings are NUL-terminated UTF-8 and must
 * stay valid while the library is loaded. */
typedef struct flowd_component {
    uint32_t abi_version;    /* FLOWD_ABI_VERSION the library was built with */
    const char *name;        /* with its library prefix: "native/Upper" */
    const char *description; /* one sentence */
    const char *icon;        /* a Font Awesome 4 icon name, e.g. "cog" (may be NULL) */
    const flowd_port *inports;
    size_t inport_count;
    const flowd_port *outports;
    size_t outport_count;
    /* Runs one process. Called on the process's own thread; may be called for several
     * processes at once, on different threads. */
    int32_t (*run)(const flowd_host_api *api, flowd_process *process);
} flowd_component;

/* The entry point every component library exports. */
const flowd_component *flowd_component_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* FLOWD_H */
