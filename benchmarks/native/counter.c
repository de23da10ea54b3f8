/* Hash-map-heavy counter: count the u32 keys of the input in a 32-slot
   open-addressing table on the stack (key 0 = empty, linear probing, at
   most 32 probes), then fold the table into the result. */
#include <stdint.h>
#include <string.h>

uint64_t run(uint8_t *mem, uint64_t len)
{
    uint32_t table[32][2];
    memset(table, 0, sizeof table);
    uint64_t n = len & ~(uint64_t)3;
    for (uint64_t off = 0; off < n; off += 4) {
        uint32_t key;
        memcpy(&key, mem + off, 4);
        uint32_t h = (uint32_t)(key * 0x9e3779b1u) >> 27;
        for (int probe = 0; probe < 32; probe++) {
            if (table[h][0] == key) { table[h][1]++; break; }
            if (table[h][0] == 0) { table[h][0] = key; table[h][1] = 1; break; }
            h = (h + 1) & 31;
        }
    }
    uint64_t r = 0;
    for (int s = 0; s < 32; s++)
        r = r * 31 + (uint64_t)table[s][0] * table[s][1];
    return r;
}
