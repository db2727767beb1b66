/* fuzz_hub_cursor.c - libFuzzer target for resume cursors ("P-O,P-O"), the
 * text a client sends back as Last-Event-ID or ?from=. A cursor that
 * parses must describe distinct partitions with next = offset + 1 and fit
 * the caller's array. */
#include <stdint.h>
#include <stdlib.h>

#include "hub/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_hub_pos pos[8];
    int n = sp_hub_cursor_parse(sp_slice_make((const char *)data, size), pos, 8);
    if (n > 8)
        abort();
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (pos[i].partition == pos[j].partition)
                abort();
    /* the full start-position parser: a cursor's array is exactly its size */
    sp_hub_start st;
    sp_hub_pos *owned = NULL;
    if (sp_hub_start_parse(sp_slice_make((const char *)data, size), &st, &owned) == 0 &&
        st.kind == SP_HUB_FROM_CURSOR && (st.pos != owned || st.npos == 0))
        abort();
    free(owned);
    return 0;
}
