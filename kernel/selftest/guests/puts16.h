/* puts: prints the NUL-terminated string at DS:SI on the console port
 * (16-bit code; clobbers AL, DX, SI). Included by the real-mode guests. */
puts:
	lodsb
	testb	%al, %al
	jz	1f
	movw	$CONSOLE, %dx
	outb	%al, %dx
	jmp	puts
1:	ret
