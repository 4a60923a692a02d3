# hello.asm: print "Hello, World!" and a newline, in mlpc's SUBLEQ assembly.
#
# Run it with:   mlpc run examples/hello.asm
#
# Every SUBLEQ instruction is `A B C`: M[B] -= M[A], then jump to C if M[B] <= 0.
# With B = -1 it outputs M[A] instead; with two operands, C is the next instruction.
#
# SUBLEQ has no indirect addressing, so the loop walks through the message by rewriting
# its own code: the output instruction's A operand (labelled `ptr`) starts at `msg` and is
# incremented after every character.

loop:   ptr: msg -1         # output M[ptr], the current character
        minus_one ptr       # ptr -= -1: point at the next character
        one count done      # count -= 1; when no characters are left, go to done
        z z loop            # z - z = 0 <= 0: jump back to loop
done:   z z -1              # jump to -1: halt

one:        .word 1
minus_one:  .word -1
z:          .word 0
count:      .word end - msg             # the message length, computed from the labels
msg:        .string "Hello, World!\n"   # one word per character
end:
