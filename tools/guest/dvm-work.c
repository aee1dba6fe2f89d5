// SPDX-License-Identifier: GPL-2.0
/*
 * dvm-work: the guest's workloads, static, run by tools/guest/init.
 *
 *   dvm-work sum CPU MIB       pinned to CPU, fill MIB of private memory
 *                              from a generator seeded with CPU, print its
 *                              checksum ("sum CPU MIB HEX MS")
 *   dvm-work expect CPU MIB    the same checksum, unpinned, no timing
 *   dvm-work par NCPU MIB      one process per CPU 0..NCPU-1 doing "sum";
 *                              print each line, then the wall time
 *   dvm-work shared NCPU ITERS one thread per CPU: each adds 1 to a
 *                              mutex-protected counter, an atomic counter
 *                              and its own slot ITERS times; print the
 *                              totals, which must be exact
 *
 * The checksums depend only on CPU and MIB, so the build machine can run
 * "expect" for the value a guest must print.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "dvm-work: cpu %d: %s\n", cpu, strerror(errno));
		exit(2);
	}
}

/* Fill @mib MiB from xorshift64 seeded by @seed, then checksum it twice. */
static uint64_t checksum(int seed, unsigned long mib)
{
	size_t n = mib << 17, i;	/* 8-byte words */
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1), sum = 0;
	uint64_t *buf = mmap(NULL, n * 8, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (buf == MAP_FAILED) {
		perror("dvm-work: mmap");
		exit(2);
	}
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = x;
	}
	for (int pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++)
			sum = (sum ^ buf[i]) * 0x100000001b3ull + i;
	munmap(buf, n * 8);
	return sum;
}

static int do_sum(int cpu, unsigned long mib, int pinned)
{
	uint64_t t0 = now_ms(), sum;

	if (pinned)
		pin(cpu);
	sum = checksum(cpu, mib);
	if (pinned)
		printf("sum %d %lu %016" PRIx64 " %" PRIu64 "\n", cpu, mib, sum,
		       now_ms() - t0);
	else
		printf("sum %d %lu %016" PRIx64 "\n", cpu, mib, sum);
	fflush(stdout);
	return 0;
}

static int do_par(int ncpu, unsigned long mib)
{
	uint64_t t0 = now_ms();
	int cpu, status, bad = 0;

	for (cpu = 0; cpu < ncpu; cpu++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("dvm-work: fork");
			return 2;
		}
		if (!pid)
			exit(do_sum(cpu, mib, 1));
	}
	while (wait(&status) > 0)
		bad |= !WIFEXITED(status) || WEXITSTATUS(status);
	printf("par %d %lu %" PRIu64 "\n", ncpu, mib, now_ms() - t0);
	return bad;
}

struct shared {
	pthread_mutex_t lock;
	uint64_t locked_count;
	uint64_t atomic_count;
	uint64_t slot[64][8];	/* one cache line each */
	unsigned long iters;
	int ncpu;
};

struct worker {
	struct shared *s;
	int cpu;
};

static void *shared_worker(void *arg)
{
	struct worker *w = arg;
	struct shared *s = w->s;

	pin(w->cpu);
	for (unsigned long i = 0; i < s->iters; i++) {
		pthread_mutex_lock(&s->lock);
		s->locked_count++;
		pthread_mutex_unlock(&s->lock);
		__atomic_fetch_add(&s->atomic_count, 1, __ATOMIC_SEQ_CST);
		s->slot[w->cpu][0]++;
	}
	return NULL;
}

static int do_shared(int ncpu, unsigned long iters)
{
	static struct shared s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t tid[64];
	struct worker w[64];
	uint64_t t0 = now_ms(), slots = 0;
	int cpu;

	if (ncpu < 1 || ncpu > 64)
		return 2;
	s.iters = iters;
	s.ncpu = ncpu;
	for (cpu = 0; cpu < ncpu; cpu++) {
		w[cpu] = (struct worker){ &s, cpu };
		if (pthread_create(&tid[cpu], NULL, shared_worker, &w[cpu]))
			return 2;
	}
	for (cpu = 0; cpu < ncpu; cpu++)
		pthread_join(tid[cpu], NULL);
	for (cpu = 0; cpu < ncpu; cpu++)
		slots += s.slot[cpu][0];
	printf("shared %d %lu locked %" PRIu64 " atomic %" PRIu64
	       " slots %" PRIu64 " expected %" PRIu64 " %" PRIu64 "\n",
	       ncpu, iters, s.locked_count, s.atomic_count, slots,
	       (uint64_t)ncpu * iters, now_ms() - t0);
	return s.locked_count != (uint64_t)ncpu * iters ||
	       s.atomic_count != (uint64_t)ncpu * iters ||
	       slots != (uint64_t)ncpu * iters;
}

int main(int argc, char **argv)
{
	if (argc == 4) {
		int a = atoi(argv[2]);
		unsigned long b = strtoul(argv[3], NULL, 0);

		if (!strcmp(argv[1], "sum"))
			return do_sum(a, b, 1);
		if (!strcmp(argv[1], "expect"))
			return do_sum(a, b, 0);
		if (!strcmp(argv[1], "par"))
			return do_par(a, b);
		if (!strcmp(argv[1], "shared"))
			return do_shared(a, b);
	}
	fprintf(stderr, "usage: dvm-work sum|expect|par|shared N M\n");
	return 2;
}
