/* placeholder: replaced by the pipeline */
#include "compiler.h"
