/* floor_pcap.c - benchmark floor: the cheapest possible pass over a capture file, a bare
 * libpcap read loop counting packets and bytes; nothing reading the file can be faster. */

#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

struct fp_count {
    uint64_t packets;
    uint64_t bytes;
};

static void
fp_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    struct fp_count *c = (struct fp_count *)user;
    (void)data;
    c->packets++;
    c->bytes += h->caplen;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: floor_pcap FILE\n", stderr);
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "floor_pcap: %s\n", err);
        return 1;
    }
    struct fp_count c = {0, 0};
    if (pcap_loop(p, -1, fp_packet, (u_char *)&c) == PCAP_ERROR) {
        fprintf(stderr, "floor_pcap: %s: %s\n", argv[1], pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("floor_pcap: %" PRIu64 " packets, %" PRIu64 " bytes\n", c.packets, c.bytes);
    return 0;
}
