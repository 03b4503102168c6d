/* connector.c: the table of connector types. */
#include "connector.h"

#include "util.h"

static const struct ob_connector_ops *const ob_connector_table[] = {
        [OB_CONNECTOR_HTTP] = &ob_http_ops,
};

const struct ob_connector_ops *ob_connector_ops_for(enum ob_connector_type type)
{
        if ((size_t)type >= OB_ELEMENTSOF(ob_connector_table))
                return NULL;
        return ob_connector_table[type];
}
