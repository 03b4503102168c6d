/* connector.c: the table of connector kinds. */
#include "connector.h"

#include <string.h>

#include "util.h"

static const struct ob_connector_kind *const ob_connector_table[] = {
        &ob_http_kind,
        &ob_ldap_kind,
        &ob_scim_kind,
        &ob_exec_kind,
};

static const struct ob_connector_kind *ob_connector_test_kind;

const struct ob_connector_kind *ob_connector_kind_at(size_t i)
{
        if (i < OB_ELEMENTSOF(ob_connector_table))
                return ob_connector_table[i];
        if (i == OB_ELEMENTSOF(ob_connector_table))
                return ob_connector_test_kind;
        return NULL;
}

const struct ob_connector_kind *ob_connector_kind_find(const char *name)
{
        const struct ob_connector_kind *k;
        for (size_t i = 0; (k = ob_connector_kind_at(i)); i++)
                if (strcmp(k->name, name) == 0)
                        return k;
        return NULL;
}

void ob_connector_kind_register_test(const struct ob_connector_kind *k)
{
        ob_connector_test_kind = k;
}
