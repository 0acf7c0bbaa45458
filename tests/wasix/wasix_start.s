# wasi_thread_start(tid, start): where every WASIX thread begins. The first word of
# WASIX's thread_start record is the top of the thread's stack: move onto it
# before running any C, then call wasix_thread_main(tid, start).
	.text
	.export_name	wasi_thread_start, wasi_thread_start
	.globaltype	__stack_pointer, i32
	.functype	wasix_thread_main (i32, i32) -> ()
	.globl	wasi_thread_start
	.type	wasi_thread_start,@function
wasi_thread_start:
	.functype	wasi_thread_start (i32, i32) -> ()
	local.get	1
	i32.load	0
	global.set	__stack_pointer
	local.get	0
	local.get	1
	call	wasix_thread_main
	end_function
