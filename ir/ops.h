/* ops.h — the one op table of the IR. One line per op:
 *   IR_OP(NAME, n_inputs, inplace)
 * inplace = 1: the op writes its result into input 0's buffer (input 0 must have
 * no other consumer; ir_verify checks it). Expanded into the enum (ir.h), the name
 * table and the arity table (graph.c). Adding an op: a line here, a builder in
 * graph.c, a case in verify.c, print.c and compiler/codegen.c, and a test in
 * tests/test_ops.c.
 *
 * Shapes use [rows, cols] with rows = T (tokens of this call) for activations. */

/*     name       n_in inplace   what it computes */
IR_OP(INPUT,      0,   0)     /* tokens [T] int32, the call's input ids */
IR_OP(WEIGHT,     0,   0)     /* a model tensor bound by name, [rows, cols] or [rows] */
IR_OP(EMBED,      2,   0)     /* (table [vocab, dim], tokens [T]) -> [T, dim] (times scale when set) */
IR_OP(RMSNORM,    2,   0)     /* (x [T, d], w [d]) -> x / rms(x) * (w + w_offset), [T, d] */
IR_OP(MATMUL,     2,   0)     /* (x [T, K], W [N, K]) -> x @ W^T, [T, N] (cblas) */
IR_OP(BIAS_ADD,   2,   1)     /* (y [T, N], b [N]) -> y + b, in place */
IR_OP(LORA,       2,   1)     /* (y [T, N], x [T, K]) -> y + sum_i w_i s_i x A_i^T B_i^T, in place */
IR_OP(ROPE,       1,   1)     /* (x [T, n_h * head_size]) rotate_half RoPE at pos0 + t, in place */
IR_OP(ATTENTION,  3,   0)     /* (q [T, n_heads*hs], k, v [T, kv_dim]) -> [T, n_heads*hs], causal, GQA, KV cache */
IR_OP(SILU_MUL,   2,   0)     /* (gate [T, h], up [T, h]) -> silu(gate) * up, [T, h] */
IR_OP(ADD,        2,   0)     /* (a [T, d], b [T, d]) -> a + b, [T, d] */
IR_OP(SLICE,      1,   0)     /* (x [T, N]) -> x[:, col0 : col0 + cols], [T, cols] (Phi-3's fused outputs) */
IR_OP(GELU_MUL,   2,   0)     /* (gate [T, h], up [T, h]) -> gelu_tanh(gate) * up, [T, h] (Gemma) */
IR_OP(OUTPUT,     1,   0)     /* marks the logits [T, vocab]; its input is planned into the caller's buffer */
