# wasi_thread_start(tid, start_arg): where every spawned thread begins. The new
# instance has its own __stack_pointer global but shares memory, so it must move
# onto the stack the spawner set aside before running any C: the first word of
# start_arg (wt_thread.stack_top) is that stack's top. Then C takes over in
# wt_thread_main(tid, start_arg).
	.text
	.export_name	wasi_thread_start, wasi_thread_start
	.globaltype	__stack_pointer, i32
	.functype	wt_thread_main (i32, i32) -> ()
	.globl	wasi_thread_start
	.type	wasi_thread_start,@function
wasi_thread_start:
	.functype	wasi_thread_start (i32, i32) -> ()
	local.get	1
	i32.load	0
	global.set	__stack_pointer
	local.get	0
	local.get	1
	call	wt_thread_main
	end_function
