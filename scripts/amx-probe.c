/* Whether this machine can run AMX tile instructions, for scripts/build-llama-cpp.sh.
 * A CPU may report AMX in CPUID while the kernel or hypervisor does not let a process
 * use the tiles; llama.cpp built with -march=native then dies with SIGILL in its AMX
 * kernels. Exit status: 0 = AMX usable, 1 = reported but not usable, 2 = not reported. */
#include <cpuid.h>
#include <immintrin.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static sigjmp_buf env;

static void on_fault(int sig) {
    (void)sig;
    siglongjmp(env, 1);
}

__attribute__((target("amx-tile"))) static void touch_tiles(void) {
    unsigned char cfg[64];
    memset(cfg, 0, sizeof cfg);
    cfg[0] = 1;   /* palette 1 */
    cfg[16] = 64; /* tile 0: 64 bytes per row */
    cfg[48] = 16; /* tile 0: 16 rows */
    _tile_loadconfig(cfg);
    _tile_zero(0);
    _tile_release();
}

int main(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)))
        return 2;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0)
        return 1;
    signal(SIGILL, on_fault);
    signal(SIGSEGV, on_fault);
    if (sigsetjmp(env, 1))
        return 1;
    touch_tiles();
    return 0;
}
