/* config.c - placeholder; replaced by the table-driven implementation. */
#include "core/config.h"
#include <stdlib.h>
#include <string.h>
void sp_config_init(sp_config *cfg) { memset(cfg, 0, sizeof *cfg); cfg->host = strdup("127.0.0.1"); cfg->port = 8000; }
void sp_config_free(sp_config *cfg) { free(cfg->host); }
