/* gen.h — lorajit_gen's shared pieces (gen_util.c): errors, the deterministic
 * random numbers, tensors, 16-bit rounding and file output. gen_model.c writes a
 * model, gen_adapter.c a PEFT adapter for it. A CLI: errors exit with status 2. */
#ifndef LORAJIT_GEN_H
#define LORAJIT_GEN_H

#include <stdint.h>
#include <stdio.h>

typedef struct gen_tensor {
    char name[192];
    int ndim;
    int64_t shape[2]; // [out, in] for matrices, [n] for vectors
    float *data;      // [shape[0] * shape[1]]
} gen_tensor;

typedef struct tensor_list {
    gen_tensor *t; // [n], capacity cap
    int n, cap;
} tensor_list;

typedef enum { DT_F32, DT_F16, DT_BF16 } gen_dtype;

/* errors: message to stderr, exit status 2 */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *xcalloc(size_t n, size_t size); /* Caller owns the result; free with free(). Never NULL. */
long parse_int(const char *opt, const char *s, long lo, long hi);
double parse_num(const char *opt, const char *s);
/* random numbers: every value a function of (seed, tensor name, index) */
uint64_t splitmix64(uint64_t *state);
uint64_t fnv1a64(const char *s);
double rng_normal(uint64_t *state);
/* tensors: l owns each tensor's data; free with tensor_list_free() */
void tensor_add(tensor_list *l, const char *name, int ndim, int64_t rows, int64_t cols,
                uint64_t seed, double mean, double std);
void tensor_list_free(tensor_list *l);
int64_t tensor_count(const gen_tensor *t);
/* dtypes: f32 as is, f16 and bf16 rounded to nearest even */
gen_dtype parse_dtype(const char *s);
const char *dtype_st_name(gen_dtype d);
const char *dtype_torch_name(gen_dtype d);
int dtype_size(gen_dtype d);
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);
void write_values(FILE *f, const float *data, int64_t count, gen_dtype dt);
/* files: open_out writes the full path into path[cap]; errors exit */
void make_dirs(const char *path);
FILE *open_out(const char *dir, const char *name, char *path, size_t cap);
void close_out(FILE *f, const char *path);
void json_str(FILE *f, const char *s);
void json_num(FILE *f, double v, int as_int);
int cmp_tensor_ptr(const void *a, const void *b);
/* Writes ts[0..n) (borrowed, sorted here by name) as dir/file in dt; returns its data bytes. */
int64_t write_safetensors(const char *dir, const char *file, gen_tensor **ts, int n, gen_dtype dt);
/* The usage of which ("model", "adapter", NULL: both): on stdout with status 0 when
 * asked for (--help), else on stderr with status 2. Does not return. */
void gen_usage(const char *which, int asked) __attribute__((noreturn));
int cmd_model(int argc, char **argv);   /* gen_model.c */
int cmd_adapter(int argc, char **argv); /* gen_adapter.c */

#endif /* LORAJIT_GEN_H */
