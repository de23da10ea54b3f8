/* XDP-style parser over a batch of packets, one per 128-byte slot: walk
   Ethernet -> IPv4 (with options) -> TCP and fold a flow hash of every
   packet (or a code saying where parsing stopped) into the result. */
#include <stdint.h>
#include <string.h>

static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

uint64_t run(uint8_t *mem, uint64_t len)
{
    uint64_t h = 0;
    for (uint64_t base = 0; base < len; base += 128) {
        const uint8_t *p = mem + base;
        uint64_t v;
        if ((uint16_t)((p[12] << 8) | p[13]) != 0x0800) { v = 1; goto next; }
        if ((p[14] >> 4) != 4) { v = 2; goto next; }
        uint64_t ihl = p[14] & 0xf;
        if (ihl < 5) { v = 3; goto next; }
        if (p[23] != 6) { v = 4; goto next; }
        const uint8_t *tcp = p + 14 + ihl * 4;
        v = (uint64_t)(ld32(p + 26) ^ ld32(p + 30) ^ ld32(tcp)) ^ ((uint64_t)tcp[13] << 32);
    next:
        h = h * 31 + v;
    }
    return h;
}
