/* tokenizer.h — internal header of tokenizer/: Hugging Face tokenizer.json as a
 * pipeline of small components (added tokens -> normalizer -> pre-tokenizer -> BPE
 * -> post-processor; decoders on the way back), built once at open and read-only
 * after, so that any number of threads may encode and decode with one tokenizer.
 * Semantics follow the Rust crate huggingface/tokenizers (each file names the
 * source it follows). Regexes: PCRE2; Unicode normalisation: utf8proc. */
#ifndef LORAJIT_TOKENIZER_H
#define LORAJIT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats.h"
#include "lorajit.h"

/* Limits (README "Limits"). tokenizer.json: 64 MiB (Qwen3's is 11 MiB, the largest
 * published BPE files ~35 MiB). model.vocab and model.merges are scanned from the
 * text (tk_scan.c), not parsed into a tree; the rest may hold TK_MAX_JSON_VALUES
 * values (4x LJ_JSON_MAX_VALUES: a file whose scanner pass fails is parsed whole,
 * and a 256k vocabulary with 256k merges as pairs is ~1.1M values). Ids below
 * TK_MAX_VOCAB (4x Gemma 3's 262144). */
#define TK_MAX_FILE ((size_t)64 << 20)
#define TK_MAX_JSON_VALUES (4 << 20)
#define TK_MAX_VOCAB (1 << 20)
#define TK_MAX_STEPS 16 /* components in one Sequence */
#define TK_MAX_EOS 8
/* The special tokens a chat template sees by name (transformers' special_tokens_map). */
enum { TK_BOS, TK_EOS, TK_UNK, TK_PAD, TK_N_SPECIAL };
extern const char *const tk_special_names[TK_N_SPECIAL]; /* "bos_token", ... (tk_extras.c) */

/* ---- tk_util.c: the file's text, byte buffers, string->id hash, UTF-8, regexes ---- */
/* The text of the regular file path (at most max bytes), mapped read-only from the
 * page cache in one call (MAP_POPULATE where there is one): no copy, and none of the
 * page faults a fresh buffer of that size takes, which on some virtual machines cost
 * more than parsing it. Read into memory when it cannot be mapped (an empty file).
 * As with safetensors, the file must not be truncated while it is read. Caller owns
 * *text; free with tk_text_free(*text, *len, *mapped). */
lorajit_status tk_text_read(const char *path, size_t max, const char **text, size_t *len, bool *mapped,
                            lj_err *err);
void tk_text_free(const char *text, size_t len, bool mapped);
/* Zeroed memory for a hash table of bytes. From 2 MiB on, a mapping of its own aligned
 * to 2 MiB and advised for transparent huge pages where the system has them (one page
 * fault per 2 MiB instead of 512). Caller owns the result; free with tk_big_free(p, bytes). */
void *tk_big_alloc(size_t bytes);
void tk_big_free(void *p, size_t bytes);
typedef struct tk_buf {
    char *p; /* [cap] bytes, p[n] kept 0 when cap > n */
    size_t n, cap;
    bool oom; /* an append failed; the buffer holds what fitted */
} tk_buf;
void tk_buf_add(tk_buf *b, const void *s, size_t n);
void tk_buf_addc(tk_buf *b, char c);
void tk_buf_free(tk_buf *b);
/* Grows b to hold at least cap bytes; false (and b->oom) when memory ran out. */
bool tk_buf_reserve(tk_buf *b, size_t cap);
/* Caller owns the result (b's bytes, NUL terminated); free with free(). b is emptied. */
char *tk_buf_take(tk_buf *b);

/* Open-addressing map from byte strings to ids; keys copied into one arena. A slot
 * holds the key's place and its value, so a lookup reads the slot and the key only. */
typedef struct tk_entry {
    uint32_t tag;      /* high half of the key's hash | 1; 0: an empty slot */
    uint32_t off, len; /* the key in keys */
    int32_t val;
} tk_entry;
typedef struct tk_map {
    tk_entry *slot;   /* [cap] */
    tk_buf keys;
    uint32_t n, cap, max_n;
} tk_map;
/* Sizes m for up to max_n keys; false when memory ran out. */
bool tk_map_init(tk_map *m, uint32_t max_n);
void tk_map_free(tk_map *m);
/* Adds key -> val; returns -1 if memory ran out or max_n keys are in, else the
 * present key's slot index + 1 when key was present (its value left unchanged), 0
 * when added. */
long tk_map_put(tk_map *m, const char *key, size_t len, int32_t val);
/* The id of key, or -1. */
int32_t tk_map_get(const tk_map *m, const char *key, size_t len);
/* The same with h = tk_map_hash(key, len) computed before, e.g. to tk_map_prefetch
 * a batch of keys first (loading for many at once instead of one after another). */
uint64_t tk_map_hash(const char *key, size_t len);
void tk_map_prefetch(const tk_map *m, uint64_t h); /* a hint: changes no result */
long tk_map_put_hashed(tk_map *m, const char *key, size_t len, int32_t val, uint64_t h);
int32_t tk_map_get_hashed(const tk_map *m, const char *key, size_t len, uint64_t h);

/* Map from (left id, right id) to merge rank and merged id. */
typedef struct tk_pair {
    uint64_t key;  /* (left << 32 | right) + 1, 0 empty */
    int32_t rank, id;
} tk_pair;
typedef struct tk_pairs {
    tk_pair *slot; /* [cap] */
    uint32_t cap;
} tk_pairs;
bool tk_pairs_init(tk_pairs *p, uint32_t max_n);
void tk_pairs_free(tk_pairs *p);
/* Sets (a, b) -> (rank, id), replacing an earlier entry (HF keeps the last one). */
void tk_pairs_put(tk_pairs *p, int32_t a, int32_t b, int32_t rank, int32_t id);
void tk_pairs_prefetch(const tk_pairs *p, int32_t a, int32_t b); /* a hint: changes no result */
/* The rank of (a, b) (-1 when no merge) and *id the merged token. */
int32_t tk_pairs_get(const tk_pairs *p, int32_t a, int32_t b, int32_t *id);

/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or n when valid. */
size_t tk_utf8_invalid_at(const char *s, size_t n);
/* Length of the UTF-8 character starting with lead byte c (1 for an invalid lead). */
int tk_utf8_len(unsigned char c);
/* Rust's String::from_utf8_lossy of s[0..n) appended to out (U+FFFD per maximal
 * invalid subpart). */
void tk_utf8_lossy(tk_buf *out, const char *s, size_t n);
/* Bytes at the end of s[0..n) that begin a UTF-8 character not yet complete (0..3). */
size_t tk_utf8_pending(const char *s, size_t n);
struct lorajit_tokenizer;
/* Fills t's ByteLevel tables (GPT-2's bytes_to_unicode, pre_tokenizers/byte_level.rs). */
void tk_bytelevel_init(struct lorajit_tokenizer *t);

/* A compiled pattern: a literal string or a PCRE2 regex. */
typedef struct tk_pattern {
    char *lit;       /* the literal (NULL for a regex); owned */
    size_t lit_len;
    void *re;        /* pcre2_code_8 * (NULL for a literal); owned */
} tk_pattern;
/* Reads {"String": s} or {"Regex": r} at obj (field name `what` in messages). */
lorajit_status tk_pattern_read(const lj_json_at *at, const struct cJSON *obj, const char *what, tk_pattern *p);
void tk_pattern_free(tk_pattern *p);
/* Next match of p in s[0..n) at or after from: 1 with [*ms, *me), 0 when none, -1
 * when the regex engine gave up (a PCRE2 resource limit). */
int tk_pattern_find(const tk_pattern *p, const char *s, size_t n, size_t from, void *md, size_t *ms, size_t *me);
/* Match data for tk_pattern_find (NULL for a literal). Caller owns the result; free with tk_match_free(). */
void *tk_match_new(const tk_pattern *p);
void tk_match_free(void *md);
/* Appends s[0..n) to out with every match of p replaced by rep. false: out of
 * memory or the regex engine gave up. */
bool tk_pattern_replace(const tk_pattern *p, const char *s, size_t n, const char *rep, size_t rep_len,
                        tk_buf *out);

/* ---- tk_scan.c: a JSON scanner for model.vocab and model.merges ---- */
typedef struct tk_model_scan {
    size_t vocab[2], merges[2]; /* [start, end) of the two values in the text; 0s: absent */
    uint32_t n_vocab, n_merges; /* their top-level commas + 1 (bounds on their entries) */
    bool model;                 /* a "model" object was found */
} tk_model_scan;
/* Finds model.vocab and model.merges in s[0..n) (one pass; the rest of the text
 * checked as JSON, those two only bracket-matched and counted); false when either
 * is absent or the text is not JSON. */
bool tk_scan_model(const char *s, size_t n, tk_model_scan *sc);
/* Whether the two values sc found are strict JSON (for messages after a failed read). */
bool tk_scan_valid(const char *s, const tk_model_scan *sc);
size_t tk_scan_ws(const char *s, size_t n, size_t i); /* past white space from i */
/* The string at s[*i] == '"' unescaped into out (NULL: only checked); *i moves past it. */
bool tk_scan_string(const char *s, size_t n, size_t *i, tk_buf *out);
/* The number at s[*i] (JSON's grammar); *i moves past it. */
bool tk_scan_number(const char *s, size_t n, size_t *i, double *v);
/* After an element: 1 and *i at the next one (a comma), 0 and *i past close, -1 otherwise. */
int tk_scan_next(const char *s, size_t n, size_t *i, char close);

/* ---- tk_model.c: the BPE model (tokenizers/src/models/bpe/{model,word}.rs) ---- */
typedef struct tk_bpe {
    tk_map vocab;              /* token text -> id */
    tk_pairs merges;           /* (left, right) -> rank, merged id */
    int32_t unk_id;            /* -1: none */
    bool fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_id[256];      /* <0xNN> ids (byte_fallback), -1 when absent */
    int32_t char_id[128];      /* ids of the one-byte tokens, -1 when absent */
} tk_bpe;
/* model: the "model" object, whose vocab and merges are read from text at the
 * ranges tk_scan_model found (the tree holds them emptied); sc NULL: not scanned. */
lorajit_status tk_bpe_read(const lj_json_at *at, const struct cJSON *model, const char *text,
                           const tk_model_scan *sc, tk_bpe *bpe);
void tk_bpe_free(tk_bpe *bpe);
/* Appends the ids of word w[0..n) to out (an int32 array in a tk_buf); false: out of memory. */
bool tk_bpe_word(const tk_bpe *bpe, const char *w, size_t n, tk_buf *out);

/* ---- tk_steps.c: normalizers, pre-tokenizers, decoders, post-processors ---- */
typedef enum tk_kind {
    TK_NFC, TK_NFD, TK_NFKC, TK_NFKD, TK_PREPEND, TK_REPLACE, /* normalizers */
    TK_SPLIT, TK_BYTELEVEL, TK_METASPACE,                      /* pre-tokenizers (+ ByteLevel) */
    TK_BYTEFALLBACK, TK_FUSE, TK_STRIP,                        /* decoders (+ Replace, ByteLevel, Metaspace) */
    TK_TEMPLATE                                                /* post-processor */
} tk_kind;
enum { TK_ISOLATED, TK_REMOVED, TK_MERGED_PREV, TK_MERGED_NEXT, TK_CONTIGUOUS };
enum { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER };
typedef struct tk_step {
    tk_kind kind;
    tk_pattern pat;        /* REPLACE, SPLIT */
    char *text;            /* PREPEND's prepend, REPLACE's content, STRIP's content, METASPACE's replacement; owned */
    size_t text_len;
    int behavior;          /* SPLIT */
    bool invert;           /* SPLIT */
    bool prefix_space;     /* BYTELEVEL add_prefix_space */
    bool use_regex;        /* BYTELEVEL */
    int prepend_scheme;    /* METASPACE */
    bool split;            /* METASPACE */
    int strip_start, strip_stop; /* STRIP */
    int32_t *tmpl;         /* TEMPLATE single: ids, -1 for the sequence; owned */
    int tmpl_n;
} tk_step;
typedef struct tk_chain {
    tk_step step[TK_MAX_STEPS];
    int n;
    bool present;          /* false: the file has null */
} tk_chain;
/* Reads the component at json path `key` (normalizer, pre_tokenizer, decoder,
 * post_processor) of root into c, refusing a type lorajit does not implement. */
lorajit_status tk_chain_read(const lj_json_at *at, const struct cJSON *root, const char *key, tk_chain *c);
void tk_chain_free(tk_chain *c);

/* ---- tk_open.c: the tokenizer ---- */
typedef struct tk_added {
    char *text;            /* owned */
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, normalized, single_word;
} tk_added;
struct lorajit_tokenizer {
    tk_bpe bpe;
    tk_chain normalizer, pretok, post, decoder;
    tk_added *added;       /* [n_added], longest first within each first byte */
    int n_added;
    tk_map added_map;      /* added token text -> index in added */
    uint8_t added_first[256]; /* 1: some added token starts with this byte */
    char **id_text;        /* [vocab_size] token text by id (borrowed from the maps), NULL for holes */
    uint32_t *id_len;      /* [vocab_size] */
    uint8_t *id_special;   /* [vocab_size] 1: a special added token */
    int vocab_size;
    int32_t bos_id, eos_ids[TK_MAX_EOS];
    int n_eos;
    char *chat_template;   /* chat_template.jinja, else tokenizer_config.json's (the "default" one of a list); owned, NULL: none */
    size_t chat_template_len;
    char chat_template_from[4096]; /* the file it came from, for messages */
    char *special_text[TK_N_SPECIAL]; /* bos/eos/unk/pad token text from the config files; owned, NULL: not named */
    char bl_chr[256][4];   /* ByteLevel: the character standing for each byte (UTF-8) */
    uint8_t bl_len[256];
    int16_t bl_byte[512];  /* ByteLevel: the byte a code point below 512 stands for, -1 none */
    bool ready;            /* open succeeded */
    uint64_t serial;       /* tells this tokenizer's thread messages from a freed one's */
    char open_msg[1024];
};
/* Records msg for the calling thread and t (lorajit_tokenizer_errmsg); returns s. */
lorajit_status tk_fail(const lorajit_tokenizer *t, lorajit_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tk_ok(const lorajit_tokenizer *t);
/* tk_extras.c: reads tokenizer_config.json, generation_config.json and special_tokens_map.json of
 * dir (each optional) for the BOS and EOS ids and the special tokens' text, and the chat
 * template (dir/chat_template.jinja, else tokenizer_config.json's chat_template). */
lorajit_status tk_read_extras(lorajit_tokenizer *t, const char *dir, lj_err *err);
/* Parses tokenizer.json text (path for messages) into t. */
lorajit_status tk_read_json(lorajit_tokenizer *t, const char *text, size_t len, const char *path, lj_err *err);

/* ---- tk_encode.c ---- */
/* Encodes text (valid UTF-8) into out (int32 ids); false: out of memory. */
bool tk_encode(const lorajit_tokenizer *t, const char *text, size_t len, bool add_special, tk_buf *out);

/* ---- tk_decode.c ---- */
/* State the decoders carry from one chunk of a sequence to the next. */
typedef struct tk_dstate {
    bool first_token;               /* no token decoded yet */
    int strip_left[TK_MAX_STEPS];   /* STRIP start budget left once fused */
} tk_dstate;
void tk_dstate_init(const lorajit_tokenizer *t, tk_dstate *st);
/* Decodes ids (known to be in the vocabulary) after state st, appending to out;
 * *safe says whether the text cannot change with further ids (st then updated when
 * commit). false: out of memory. */
bool tk_decode_chunk(const lorajit_tokenizer *t, const int32_t *ids, int n, bool skip_special, tk_dstate *st,
                     bool commit, tk_buf *out, bool *safe);

#endif /* LORAJIT_TOKENIZER_H */
