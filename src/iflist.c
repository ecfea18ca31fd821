/* iflist.c - see iflist.h. */
#include "iflist.h"

#include <string.h>

#include <pcap/pcap.h>

#include "esc.h"

int
iflist_print(FILE *out, char *err, size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    pcap_if_t *all = NULL;
    if (pcap_findalldevs(&all, errbuf) != 0) {
        snprintf(err, errlen, "cannot list the capture interfaces: %s", errbuf);
        return -1;
    }
    unsigned n = 0;
    for (pcap_if_t *d = all; d; d = d->next) {
        const char *flags[6];
        size_t nf = 0;
        if (d->flags & PCAP_IF_UP)
            flags[nf++] = "Up";
        if (d->flags & PCAP_IF_RUNNING)
            flags[nf++] = "Running";
        if (d->flags & PCAP_IF_WIRELESS)
            flags[nf++] = "Wireless";
        if (d->flags & PCAP_IF_LOOPBACK)
            flags[nf++] = "Loopback";
        switch (d->flags & PCAP_IF_CONNECTION_STATUS) {
        case PCAP_IF_CONNECTION_STATUS_CONNECTED:
            flags[nf++] = (d->flags & PCAP_IF_WIRELESS) ? "Associated" : "Connected";
            break;
        case PCAP_IF_CONNECTION_STATUS_DISCONNECTED:
            flags[nf++] = (d->flags & PCAP_IF_WIRELESS) ? "Not associated" : "Disconnected";
            break;
        default:
            break;
        }
        /* Names and descriptions come from the system (a USB device's own strings): escaped
         * like anything else that reaches a terminal. */
        fprintf(out, "%u.", ++n);
        esc_puts(out, d->name);
        if (d->description && *d->description) {
            fputs(" (", out);
            esc_puts(out, d->description);
            fputc(')', out);
        }
        if (nf) {
            fputs(" [", out);
            for (size_t i = 0; i < nf; i++)
                fprintf(out, "%s%s", i ? ", " : "", flags[i]);
            fputc(']', out);
        }
        fputc('\n', out);
    }
    pcap_freealldevs(all);
    return 0;
}
