/* memset + memcpy in 8-byte words: regions of n bytes (n = len / 4
   rounded down to 8); fill the third with 0x5a, copy the first
   to the second, return the wrapping sum of the copied words. */
#include <stdint.h>
#include <string.h>

uint64_t run(uint8_t *mem, uint64_t len)
{
    uint64_t n = (len / 4) & ~(uint64_t)7;
    uint8_t *dst = mem + n, *set = mem + 2 * n;
    const uint64_t pattern = 0x5a5a5a5a5a5a5a5aULL;
    for (uint64_t i = 0; i < n; i += 8)
        memcpy(set + i, &pattern, 8);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, mem + i, 8);
        sum += w;
        memcpy(dst + i, &w, 8);
    }
    return sum;
}
