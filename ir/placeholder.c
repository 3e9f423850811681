/* placeholder so the ir library has a source; removed once ir/ has code */
typedef int ir_placeholder_unused;
