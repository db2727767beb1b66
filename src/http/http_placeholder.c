int sp__http_placeholder(void);
int sp__http_placeholder(void) { return 0; }
