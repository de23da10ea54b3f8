/* bpf-to-bpf call chain: every u32 of the input goes through four nested
   non-inlined functions (main -> f1 -> f2 -> f3 -> f4); sum the results. */
#include <stdint.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

static NOINLINE uint64_t f4(uint64_t x) { return (x << 7) ^ (x >> 11); }
static NOINLINE uint64_t f3(uint64_t x) { return f4(x + 0x1234) * 5; }
static NOINLINE uint64_t f2(uint64_t x) { return f3(x ^ (x >> 3)) + 7; }
static NOINLINE uint64_t f1(uint64_t x) { return f2(x * 3 + 1) ^ x; }

uint64_t run(uint8_t *mem, uint64_t len)
{
    uint64_t acc = 0;
    for (uint64_t off = 0; off < len; off += 4) {
        uint32_t x;
        memcpy(&x, mem + off, 4);
        acc += f1(x);
    }
    return acc;
}
