/* placeholder: replaced by the CLI */
#include "lorajit.h"
int main(void) { return 0; }
