/* Sieve of Eratosthenes over the input memory: clear it, then count the
   primes below len.  Same algorithm as the BPF "sieve" workload. */
#include <stdint.h>

uint64_t run(uint8_t *mem, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        mem[i] = 0;
    uint64_t count = 0;
    for (uint64_t i = 2; i < len; i++) {
        if (mem[i])
            continue;
        count++;
        for (uint64_t j = i * i; j < len; j += i)
            mem[j] = 1;
    }
    return count;
}
