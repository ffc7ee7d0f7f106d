/* Deliberately broken native components for the loader's tests; one per -D flag. */
#include <string.h>

#include "flowd.h"

__attribute__((unused)) static int32_t fail_run(const flowd_host_api *api, flowd_process *process) {
    int32_t in = api->inport(process, "in", -1);
    flowd_ip ip;
    if (api->recv(process, in, &ip) == FLOWD_OK) {
        const char *message = "refusing the first packet on purpose";
        api->fail(process, message, strlen(message));
        return 7;
    }
    return 0;
}

__attribute__((unused)) static const flowd_port inports[] = {{"in", "all", "anything", 0, 0}};

#if defined(WRONG_ABI)
static const flowd_component component = {99, "test/WrongAbi", "", NULL, NULL, 0, NULL, 0, fail_run};
const flowd_component *flowd_component_v1(void) { return &component; }
#elif defined(NO_NAME)
static const flowd_component component = {FLOWD_ABI_VERSION, "NoLibrary", "", NULL, NULL, 0, NULL, 0, fail_run};
const flowd_component *flowd_component_v1(void) { return &component; }
#elif defined(FAILS)
static const flowd_component component = {
    FLOWD_ABI_VERSION, "test/Fails", "fails on its first packet", NULL, inports, 1, NULL, 0, fail_run};
const flowd_component *flowd_component_v1(void) { return &component; }
#elif defined(PORT_TWICE)
static const flowd_port twice[] = {{"in", "all", "", 0, 0}, {"IN", "all", "", 0, 0}};
static const flowd_component component = {
    FLOWD_ABI_VERSION, "test/Twice", "declares its inport twice", NULL, twice, 2, NULL, 0, fail_run};
const flowd_component *flowd_component_v1(void) { return &component; }
#elif defined(CORE_NAME)
static const flowd_component component = {
    FLOWD_ABI_VERSION, "core/Count", "claims a core component's name", NULL, inports, 1, NULL, 0,
    fail_run};
const flowd_component *flowd_component_v1(void) { return &component; }
#else
/* NO_ENTRY: a shared object that is not a flowd component. */
int not_a_component(void) { return 42; }
#endif
