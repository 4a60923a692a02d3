# count.asm: a counting loop for benchmarking the SUBLEQ engines.
#
# The loop decrements `count` from 5,000,000 to 0, one per iteration, two instructions per
# iteration: 2 * 4,999,999 + 1 (the last decrement) + 1 (the halt) = 10,000,000 steps.

loop:   one count done      # count -= 1; once it reaches 0, leave the loop
        z z loop            # z - z = 0 <= 0: jump back unconditionally
done:   z z -1              # halt

one:    .word 1
z:      .word 0
count:  .word 5000000
