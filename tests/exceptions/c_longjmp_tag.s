# The exception tag LLVM's setjmp/longjmp lowering throws (`__c_longjmp`, payload:
# the jmp_buf's argument block). wasi-libc defines it in newer releases; zig 0.17's
# copy of wasi-libc calls it without defining it.
	.globl	__c_longjmp
	.tagtype	__c_longjmp i32
__c_longjmp:
