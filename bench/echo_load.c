/* Load generator for the echo benchmark: CONNS connections to 127.0.0.1:PORT,
 * each sends SIZE bytes and waits for their echo before sending again
 * (ping-pong, so every message is one recv and one send in the server).
 * Prints "result ROUND_TRIPS_PER_SECOND" after SECONDS.
 *
 *     echo_load PORT CONNS SECONDS SIZE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_SIZE 4096

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_msg(int fd, const char *msg, int size)
{
	int off = 0;

	while (off < size) {
		ssize_t n = send(fd, msg + off, (size_t)(size - off), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (int)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char msg[MAX_SIZE], buf[MAX_SIZE];
	int got[MAX_CONNS], fds[MAX_CONNS];
	struct sockaddr_in sa;
	struct epoll_event evs[MAX_CONNS];
	unsigned long long trips = 0;
	int port, conns, size, ep, i, one = 1;
	double secs, start, end, t;

	if (argc != 5) {
		fprintf(stderr, "usage: echo_load PORT CONNS SECONDS SIZE\n");
		return 2;
	}
	port = atoi(argv[1]);
	conns = atoi(argv[2]);
	secs = atof(argv[3]);
	size = atoi(argv[4]);
	if (port <= 0 || conns <= 0 || conns > MAX_CONNS || secs <= 0 || size <= 0 || size > MAX_SIZE) {
		fprintf(stderr, "echo_load: bad arguments\n");
		return 2;
	}
	memset(msg, 'x', sizeof(msg));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("echo_load: epoll_create1");
		return 1;
	}
	for (i = 0; i < conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("echo_load: connect");
			return 1;
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			perror("echo_load: epoll_ctl");
			return 1;
		}
		got[i] = 0;
	}
	start = now_s();
	end = start + secs;
	for (i = 0; i < conns; i++)
		if (send_msg(fds[i], msg, size) < 0) {
			perror("echo_load: send");
			return 1;
		}
	for (;;) {
		int n, k;

		t = now_s();
		if (t >= end)
			break;
		n = epoll_wait(ep, evs, MAX_CONNS, (int)((end - t) * 1000) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("echo_load: epoll_wait");
			return 1;
		}
		for (k = 0; k < n; k++) {
			int c = (int)evs[k].data.u32;
			ssize_t r = recv(fds[c], buf, sizeof(buf), 0);

			if (r <= 0) {
				if (r < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				fprintf(stderr, "echo_load: connection %d closed\n", c);
				return 1;
			}
			got[c] += (int)r;
			while (got[c] >= size) {
				got[c] -= size;
				trips++;
				if (got[c] == 0 && send_msg(fds[c], msg, size) < 0) {
					perror("echo_load: send");
					return 1;
				}
			}
		}
	}
	t = now_s();
	printf("result %.1f\n", (double)trips / (t - start));
	for (i = 0; i < conns; i++)
		close(fds[i]);
	close(ep);
	return 0;
}
