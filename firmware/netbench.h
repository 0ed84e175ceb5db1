/* The frames of the network benchmark (firmware/netbench.c, the guest, and
 * tools/bench/net_gen.c, the host's generator): an Ethernet header with the
 * local experimental EtherType, a magic, the job and a sequence number.
 * Shared by freestanding and host code: no headers, only C types. */
#ifndef NETBENCH_H
#define NETBENCH_H

#define NB_ETHERTYPE 0x88b5 /* IEEE 802 local experimental 1 */
#define NB_MAGIC     "KVNB"
#define NB_OFF_MAGIC 14
#define NB_OFF_JOB   18 /* u32, little-endian */
#define NB_OFF_SEQ   22 /* u64, little-endian */
#define NB_FRAME_MIN 30 /* the fields above; the rest of a frame is zero */
/* The MAC address tools/bench/net gives the host's tap (the guest's frames
 * go there), and the guest's own. */
#define NB_HOST_MAC  0x020000000001ULL
#define NB_GUEST_MAC "52:54:00:12:34:56"

/* Write the header fields of a frame of job (job), sequence 0, from (src)
 * to (dst) into (f); the caller zeroed the rest. */
static inline void nb_frame_init(volatile unsigned char *f, const unsigned char *dst,
				 const unsigned char *src, unsigned job)
{
	for (int i = 0; i < 6; i++) {
		f[i] = dst[i];
		f[6 + i] = src[i];
	}
	f[12] = NB_ETHERTYPE >> 8;
	f[13] = NB_ETHERTYPE & 0xff;
	for (int i = 0; i < 4; i++) {
		f[NB_OFF_MAGIC + i] = (unsigned char)NB_MAGIC[i];
		f[NB_OFF_JOB + i] = (unsigned char)(job >> (8 * i));
	}
}

static inline void nb_frame_set_seq(volatile unsigned char *f, unsigned long long seq)
{
	*(volatile unsigned long long *)(f + NB_OFF_SEQ) = seq; /* x86: unaligned, LE */
}

/* Whether (f), at least NB_FRAME_MIN bytes, is a frame of job (job); its
 * sequence number in (*seq). */
static inline _Bool nb_frame_is(volatile const unsigned char *f, unsigned job,
				unsigned long long *seq)
{
	unsigned j = 0;

	if (f[12] != NB_ETHERTYPE >> 8 || f[13] != (NB_ETHERTYPE & 0xff))
		return 0;
	for (int i = 0; i < 4; i++) {
		if (f[NB_OFF_MAGIC + i] != (unsigned char)NB_MAGIC[i])
			return 0;
		j |= (unsigned)f[NB_OFF_JOB + i] << (8 * i);
	}
	*seq = *(volatile const unsigned long long *)(f + NB_OFF_SEQ);
	return j == job;
}

#endif
