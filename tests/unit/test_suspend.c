/* What a saved state must match (suspend_fp_from_argv): the memory, CPUs,
 * machine and the frontends; not what a clone changes (MAC addresses) or a
 * run (descriptors, paths, backends, monitors). And sparse copies
 * (copy_file_sparse) keep their holes. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clone.h"
#include "suspend.h"
#include "testutil.h"

static void fp(struct suspend_fp *f, char *const *argv)
{
	suspend_fp_from_argv(f, argv);
}

static void fingerprint(void **state)
{
	char *a[] = {"qemu", "-machine", "q35", "-m", "256", "-smp", "1", "-accel", "tcg",
		     "-drive", "if=none,id=d0,file=/dev/fdset/3,format=qcow2",
		     "-device", "virtio-blk-pci,drive=d0,id=hd0",
		     "-netdev", "user,id=n0,hostfwd=tcp::2222-:22",
		     "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01",
		     "-chardev", "socket,id=vmrun,fd=9", "-mon", "chardev=vmrun,mode=control", NULL};
	/* a clone: another MAC, forward, fd; a run: -S, -incoming, -snapshot */
	char *b[] = {"qemu", "-S", "-machine", "q35", "-m", "256", "-smp", "1", "-accel", "tcg", "-snapshot",
		     "-drive", "if=none,id=d0,file=/dev/fdset/5,format=qcow2",
		     "-device", "virtio-blk-pci,drive=d0,id=hd0",
		     "-netdev", "user,id=n0,hostfwd=tcp::2223-:22",
		     "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:02",
		     "-incoming", "defer", NULL};
	/* another device */
	char *c[] = {"qemu", "-machine", "q35", "-m", "256", "-smp", "1", "-accel", "tcg",
		     "-device", "virtio-blk-pci,drive=d0,id=hd0", "-device", "virtio-rng-pci", NULL};
	struct suspend_fp fa, fb, fc;
	fp(&fa, a);
	fp(&fb, b);
	fp(&fc, c);
	assert_string_equal(fa.memory, "256");
	assert_string_equal(fa.smp, "1");
	assert_string_equal(fa.machine, "q35");
	assert_string_equal(fa.accel, "tcg");
	assert_null(fa.cpu);
	assert_string_equal(fa.devices, fb.devices);
	assert_string_not_equal(fa.devices, fc.devices);
	suspend_fp_free(&fa);
	suspend_fp_free(&fb);
	suspend_fp_free(&fc);
}

static void sparse_copy(void **state)
{
	char dir[] = "/tmp/test_suspend.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *src = path_join(dir, "src"), *dst = path_join(dir, "dst"), *err = NULL;
	int fd = open(src, O_RDWR | O_CREAT, 0640);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 30), 0);
	assert_int_equal(pwrite(fd, "data", 4, 512 << 20), 4);
	close(fd);
	assert_int_equal(copy_file_sparse(src, dst, &err), 0);
	struct stat st;
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, 1 << 30);
	assert_true(st.st_blocks < 4096); /* 2 MiB at most: the hole stayed */
	assert_int_equal(st.st_mode & 0777, 0640);
	char buf[4] = {0};
	fd = open(dst, O_RDONLY);
	assert_int_equal(pread(fd, buf, 4, 512 << 20), 4);
	close(fd);
	assert_memory_equal(buf, "data", 4);
	assert_int_equal(copy_file_sparse(src, dst, &err), -1); /* dst exists */
	assert_non_null(strstr(err, "dst"));
	free(err);
	unlink(src);
	unlink(dst);
	rmdir(dir);
	free(src);
	free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fingerprint),
	    cmocka_unit_test(sparse_copy),
	};
	return cmocka_run_group_tests_name("suspend", tests, NULL, NULL);
}
