/* Test guest: spins forever without an exit. Keel must still take its CPU
 * back at the end of each time slice. */
	.code16
	.globl	_start
_start:
	cli
1:	jmp	1b
