// SPDX-License-Identifier: GPL-2.0
/*
 * tcprr: userspace TCP request/response between two emulated hosts, the
 * baseline DVM's transports are compared against, and a data check.
 *
 *   tcprr server PORT [CONNS]             serves CONNS clients (default 1)
 *   tcprr client HOST PORT SIZE ITERS     prints BENCH tcp_rr_<SIZE> <us> us
 *
 * The client sends ITERS requests of SIZE bytes with a running pattern; the
 * server echoes each one; the client checks every byte it gets back.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE (1 << 20)

static int io_all(int fd, void *buf, size_t len, int writing)
{
	char *p = buf;

	while (len) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int serve_one(int fd, char *buf)
{
	uint32_t len;

	nodelay(fd);
	while (!io_all(fd, &len, sizeof(len), 0)) {
		if (len > MAX_SIZE || io_all(fd, buf, len, 0) ||
		    io_all(fd, &len, sizeof(len), 1) || io_all(fd, buf, len, 1))
			return 1;
	}
	close(fd);
	return 0;
}

static int serve(const char *port, int conns)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6,
				  .sin6_port = htons(atoi(port)) };
	int one = 1, ls, fd;
	char *buf = malloc(MAX_SIZE);

	ls = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!buf || bind(ls, (void *)&a, sizeof(a)) || listen(ls, 1)) {
		perror("tcprr server");
		return 1;
	}
	while (conns--) {
		fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			perror("accept");
			return 1;
		}
		if (serve_one(fd, buf))
			return 1;
	}
	return 0;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd, tries;

	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "tcprr: cannot resolve %s\n", host);
		return -1;
	}
	for (tries = 0; tries < 300; tries++) {
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		close(fd);
		fd = -1;
		usleep(100000);
	}
	freeaddrinfo(ai);
	if (fd < 0)
		fprintf(stderr, "tcprr: cannot connect to %s:%s\n", host, port);
	else
		nodelay(fd);
	return fd;
}

static int client(const char *host, const char *port, uint32_t size, int iters)
{
	char *out = malloc(size), *in = malloc(size);
	struct timespec t0, t1;
	uint32_t i, len;
	int fd, it;

	if (!out || !in || size > MAX_SIZE)
		return 1;
	fd = dial(host, port);
	if (fd < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (it = 0; it < iters; it++) {
		for (i = 0; i < size; i++)
			out[i] = (char)(i * 7 + it);
		len = size;
		if (io_all(fd, &len, sizeof(len), 1) || io_all(fd, out, size, 1) ||
		    io_all(fd, &len, sizeof(len), 0) || len != size ||
		    io_all(fd, in, size, 0)) {
			fprintf(stderr, "tcprr: connection lost at %d\n", it);
			return 1;
		}
		if (memcmp(in, out, size)) {
			fprintf(stderr, "tcprr: data mismatch at %d\n", it);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("BENCH tcp_rr_%u %.1f us\n", size,
	       ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / iters);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	/* Never outlive a lost peer: the test harness waits for us. */
	alarm(300);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "server"))
		return serve(argv[2], argc == 4 ? atoi(argv[3]) : 1);
	if (argc == 6 && !strcmp(argv[1], "client"))
		return client(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: tcprr server PORT | client HOST PORT SIZE ITERS\n");
	return 2;
}
