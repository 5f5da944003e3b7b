/*
 * buildsim: a parallel build. `--units` compile jobs run at most `--jobs` at a time, as make -j
 * would; each job is a fresh process (fork + exec, like a compiler) that burns a varying amount
 * of CPU and writes and reads back a small object file. Prints the makespan.
 *
 *   buildsim --units=60 --jobs=4 --work-us=20000
 *   -> SCHEDCTL-RESULT {"load":"buildsim","units":60,"jobs":4,"makespan_ms":..,"mean_unit_ms":..}
 */
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "loadgen.h"

#define OBJECT_BYTES 16384

/* One compile: CPU, then a small write and read back, as a compiler emitting an object. */
static int compile_unit(long unit, long work_us)
{
	prctl(PR_SET_NAME, "cc1"); /* exec'ing /proc/self/exe would name it "exe" */
	/* A fixed, seeded spread (0.5x to 1.5x): some units are heavier than others. */
	burn_us(work_us / 2 + (uint64_t)((unit * 2654435761u) % 1000) * work_us / 1000);
	char path[64], buf[OBJECT_BYTES];
	snprintf(path, sizeof path, "/tmp/buildsim-%d.o", getpid());
	memset(buf, (int)unit, sizeof buf);
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	if (fd < 0 || write(fd, buf, sizeof buf) != sizeof buf || pread(fd, buf, sizeof buf, 0) != sizeof buf)
		return 1;
	close(fd);
	unlink(path);
	return 0;
}

int main(int argc, char **argv)
{
	long unit = arg_long(argc, argv, "unit", -1);
	long work_us = arg_long(argc, argv, "work-us", 20000);
	if (unit >= 0)
		return compile_unit(unit, work_us);

	long units = arg_long(argc, argv, "units", 60);
	long jobs = arg_long(argc, argv, "jobs", 4);
	if (jobs < 1) {
		fprintf(stderr, "--jobs must be >= 1\n");
		return 2;
	}
	char work_arg[48];
	snprintf(work_arg, sizeof work_arg, "--work-us=%ld", work_us);

	uint64_t start = now_ns(), unit_ns = 0;
	uint64_t *started = calloc(units + 1, sizeof *started);
	pid_t *pids = calloc(units + 1, sizeof *pids);
	long next = 0, running = 0, failed = 0;
	while (next < units || running > 0) {
		if (next < units && running < jobs) {
			char unit_arg[48];
			snprintf(unit_arg, sizeof unit_arg, "--unit=%ld", next);
			started[next] = now_ns();
			pid_t pid = fork();
			if (pid == 0) {
				execl("/proc/self/exe", "buildsim", unit_arg, work_arg, (char *)NULL);
				_exit(127);
			}
			pids[next++] = pid;
			running++;
			continue;
		}
		int status;
		pid_t pid = wait(&status);
		if (pid < 0)
			break;
		running--;
		failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		for (long i = 0; i < next; i++)
			if (pids[i] == pid)
				unit_ns += now_ns() - started[i];
	}
	double makespan_ms = (now_ns() - start) / 1e6;
	printf(RESULT_MARKER "{\"load\":\"buildsim\",\"units\":%ld,\"jobs\":%ld,\"work_us\":%ld,\"failed\":%ld,"
			     "\"makespan_ms\":%.1f,\"mean_unit_ms\":%.1f}\n",
	       units, jobs, work_us, failed, makespan_ms, units ? unit_ns / 1e6 / units : 0.0);
	return failed ? 1 : 0;
}
