/* Helpers shared by the files of the configuration module (src/config). */
#ifndef KVISOR_CONFIG_PRIV_H
#define KVISOR_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>

struct config_device;

/* Whether (id) has the syntax of a device id (and of a VM name): a letter,
 * then letters, digits, '-' or '_', at most CONFIG_ID_MAX - 1 bytes. */
bool config_id_valid(const char *id);

/* Free what (dev) owns, and (dev) itself; NULL is fine. */
void config_device_free(struct config_device *dev);

#endif
