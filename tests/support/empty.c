/* Keeps the support library non-empty before any helper exists. */
int ob_test_support_empty;
