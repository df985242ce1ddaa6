/* Not Python: a C event loop (epoll_wait, then a 5 ms nanosleep inside each
 * iteration). loopspy still finds the loop and the blocking call; it has
 * no Python stacks and says why, once. Prints "READY <pid>". */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct epoll_event ev;
	int epfd = epoll_create1(0);

	if (epfd < 0) {
		perror("epoll_create1");
		return 1;
	}
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		struct timespec ts = { 0, 5000000 };

		epoll_wait(epfd, &ev, 1, 2);
		nanosleep(&ts, NULL);
	}
}
