/* placeholder so the runtime library has a source; removed once runtime/ has code */
typedef int lj_placeholder_unused;
