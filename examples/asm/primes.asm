# Count the primes below 400 with a sieve of Eratosthenes on the stack.
# One byte per number at [r10-400+n]: 0 = maybe prime, 1 = crossed out.
# Expected result: r0 = 78.
    mov %r1, 0
clear:
    mov %r2, %r10
    sub %r2, 400
    add %r2, %r1
    stb [%r2+0], 0
    add %r1, 1
    jlt %r1, 400, clear
    mov %r0, 0                # primes found so far
    mov %r1, 2                # candidate
next:
    mov %r2, %r10
    sub %r2, 400
    add %r2, %r1
    ldxb %r3, [%r2+0]
    jne %r3, 0, skip
    add %r0, 1
    mov %r4, %r1
    mul %r4, %r1              # smaller multiples were crossed out by smaller primes
mark:
    jge %r4, 400, skip
    mov %r2, %r10
    sub %r2, 400
    add %r2, %r4
    stb [%r2+0], 1
    add %r4, %r1
    ja mark
skip:
    add %r1, 1
    jlt %r1, 400, next
    exit
