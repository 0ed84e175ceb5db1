/* Frame generator of tools/bench/net: sends the network benchmark's frames
 * (firmware/netbench.h) out of a host interface (the tap of a VM) through an
 * AF_PACKET socket, as fast as the tap takes them or at a given rate, until
 * SIGTERM, SIGINT or a time limit, then prints how many it sent. */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netbench.h"

#define GEN_BATCH 64
#define GEN_MAX   1514

static volatile sig_atomic_t gen_stop;

static void gen_on_signal(int sig)
{
	(void)sig;
	gen_stop = 1;
}

static double gen_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int gen_mac(const char *s, unsigned char *mac)
{
	char end;

	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%c", &mac[0], &mac[1], &mac[2], &mac[3],
		      &mac[4], &mac[5], &end) == 6 ?
		       0 :
		       -1;
}

static int gen_usage(void)
{
	fprintf(stderr,
		"usage: net_gen IFNAME DST-MAC SRC-MAC LEN JOB [SECONDS [PPS]]\n"
		"  LEN from %d to %d bytes; SECONDS (default 60) bounds the run; PPS "
		"(default 0: unpaced) paces it\n",
		NB_FRAME_MIN, GEN_MAX);
	return 2;
}

/* A socket that sends on (ifname), past the qdisc: the tap itself drops
 * what its reader (the VMM) cannot take. */
static int gen_socket(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int fd, one = 1;

	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex) {
		fprintf(stderr, "net_gen: %s: %s\n", ifname, strerror(errno));
		return -1;
	}
	/* Protocol 0: the socket receives nothing. */
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		fprintf(stderr, "net_gen: AF_PACKET socket on %s: %s\n", ifname, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static unsigned char frames[GEN_BATCH][GEN_MAX];
	struct mmsghdr msgs[GEN_BATCH];
	struct iovec iov[GEN_BATCH];
	struct sigaction sa = { .sa_handler = gen_on_signal };
	unsigned char dst[6], src[6];
	unsigned long long sent = 0, full = 0;
	unsigned long len, job;
	double seconds = 60, pps = 0, t0;
	int fd;

	if (argc < 6 || argc > 8 || gen_mac(argv[2], dst) || gen_mac(argv[3], src))
		return gen_usage();
	len = strtoul(argv[4], NULL, 10);
	job = strtoul(argv[5], NULL, 10);
	if (argc > 6)
		seconds = atof(argv[6]);
	if (argc > 7)
		pps = atof(argv[7]);
	if (len < NB_FRAME_MIN || len > GEN_MAX || seconds <= 0 || pps < 0)
		return gen_usage();
	fd = gen_socket(argv[1]);
	if (fd < 0)
		return 1;
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: sendmmsg returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < GEN_BATCH; i++) {
		nb_frame_init(frames[i], dst, src, (unsigned)job);
		iov[i] = (struct iovec){ frames[i], len };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = gen_now();
	while (!gen_stop) {
		double now = gen_now();
		int n;

		if (now - t0 >= seconds)
			break;
		if (pps > 0 && (double)sent > (now - t0) * pps) {
			usleep(100);
			continue;
		}
		for (int i = 0; i < GEN_BATCH; i++)
			nb_frame_set_seq(frames[i], sent + (unsigned)i);
		n = sendmmsg(fd, msgs, GEN_BATCH, 0);
		if (n > 0) {
			sent += (unsigned)n;
		} else if (errno == ENOBUFS || errno == EAGAIN) {
			/* The tap's queue is full (its reader is behind): the
			 * frame was dropped and is sent again with the same
			 * sequence number. Back off instead of spinning, so that
			 * the VMM has the CPU to catch up on a small host. */
			full++;
			usleep(20);
		} else if (errno != EINTR) {
			fprintf(stderr, "net_gen: sendmmsg on %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
	}
	printf("net_gen: sent %llu frames of %lu bytes in %.3f s (%llu times the tap was full)\n",
	       sent, len, gen_now() - t0, full);
	return 0;
}
