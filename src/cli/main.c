#include <stdio.h>
int main(void) { puts("spate " SPATE_VERSION); return 0; }
