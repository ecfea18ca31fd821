/* select.h - which connections are analysed when a BPF filter replaced the port selection:
 * those on the mail ports always; one on another port only once its content is SMTP (the
 * server's first line "220 " or "220-", or the client's first line EHLO or HELO). Until
 * then its events are held back; a connection whose content is something else is never
 * reported. Sits between the reassembler and the session layer as a reasm_ops wrapper. */
#ifndef SMTPSNIFF_SELECT_H
#define SMTPSNIFF_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "reasm.h"

struct sel;

/* ports: the mail ports (analysed whatever they carry). inner: the session layer's ops.
 * Fills *out with the wrapper's ops. NULL on allocation failure. */
struct sel *sel_create(const uint16_t *ports, size_t nports, const struct reasm_ops *inner,
                       struct reasm_ops *out);
void sel_destroy(struct sel *s);
/* Connections on other ports that were not analysed: their content was not SMTP. */
uint64_t sel_not_smtp(const struct sel *s);

#endif
