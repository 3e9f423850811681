/* elf.c — reads an ELF64 shared library's exported symbols from its bytes, without
 * loading it (nothing in the file runs). An artifact's library is checked this way
 * before dlopen (serving/artifact.c) and right after linking (compiler/aot.c): that
 * it exports its entry points, and the values of its constants (ABI version, code
 * hash, scratch sizes, layout digest). Every offset and size read from the file is
 * bounds-checked against its length; a file that is not an ELF64 little-endian
 * shared object, or lacks a symbol, is refused naming the file and the symbol. */
#include <elf.h>
#include <string.h>

#include "formats.h"

/* data[off..off+n) lies inside data[0..len). */
static bool inside(size_t len, uint64_t off, uint64_t n) { return off <= len && n <= len - off; }

/* The file offset of virtual address [v, v+n) from the PT_LOAD segments; false when
 * no segment holds it in the file's bytes. */
static bool file_offset(const char *data, size_t len, const Elf64_Ehdr *eh, uint64_t v, uint64_t n, uint64_t *off) {
    for (int i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, data + eh->e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD || v < ph.p_vaddr || v - ph.p_vaddr > ph.p_filesz ||
            n > ph.p_filesz - (v - ph.p_vaddr))
            continue;
        *off = ph.p_offset + (v - ph.p_vaddr);
        return inside(len, *off, n);
    }
    return false;
}

/* Finds name among syms[0..n) of strtab[0..strsz): a defined, global or weak,
 * default-visibility symbol. */
static const Elf64_Sym *find(const Elf64_Sym *syms, uint64_t n, const char *strtab, uint64_t strsz, const char *name,
                             Elf64_Sym *buf) {
    size_t want = strlen(name) + 1;
    for (uint64_t i = 1; i < n; i++) {
        memcpy(buf, (const char *)syms + i * sizeof *buf, sizeof *buf);
        int bind = ELF64_ST_BIND(buf->st_info);
        if (buf->st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK) ||
            ELF64_ST_VISIBILITY(buf->st_other) != STV_DEFAULT || buf->st_name >= strsz ||
            strsz - buf->st_name < want || memcmp(strtab + buf->st_name, name, want) != 0)
            continue;
        return buf;
    }
    return NULL;
}

lorajit_status lj_elf_symbols(const void *file, size_t len, const char *path, lj_elf_sym *want, int n_want,
                              lj_err *err) {
    const char *data = file;
    Elf64_Ehdr eh;
    if (len < sizeof eh) return lj_fail(err, LORAJIT_E_FORMAT, "%s: not an ELF shared library (too short)", path);
    memcpy(&eh, data, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_type != ET_DYN || eh.e_shentsize != sizeof(Elf64_Shdr) ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || !inside(len, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr)) ||
        !inside(len, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: not an ELF64 little-endian shared library with section and "
                       "program headers", path);
    Elf64_Shdr dynsym = {0}, dynstr = {0};
    for (int i = 0; i < eh.e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, data + eh.e_shoff + (uint64_t)i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_DYNSYM) continue;
        dynsym = sh;
        if (sh.sh_link < eh.e_shnum) memcpy(&dynstr, data + eh.e_shoff + (uint64_t)sh.sh_link * sizeof sh, sizeof sh);
        break;
    }
    if (dynsym.sh_type != SHT_DYNSYM || dynsym.sh_entsize != sizeof(Elf64_Sym) || dynstr.sh_type != SHT_STRTAB ||
        !inside(len, dynsym.sh_offset, dynsym.sh_size) || !inside(len, dynstr.sh_offset, dynstr.sh_size))
        return lj_fail(err, LORAJIT_E_FORMAT, "%s: no readable dynamic symbol table (.dynsym)", path);
    const Elf64_Sym *syms = (const Elf64_Sym *)(const void *)(data + dynsym.sh_offset);
    const char *strtab = data + dynstr.sh_offset;
    for (int k = 0; k < n_want; k++) {
        Elf64_Sym buf;
        const Elf64_Sym *s = find(syms, dynsym.sh_size / sizeof buf, strtab, dynstr.sh_size, want[k].name, &buf);
        int type = s ? ELF64_ST_TYPE(s->st_info) : -1;
        if (!s || (want[k].size ? type != STT_OBJECT || s->st_size != want[k].size : type != STT_FUNC))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: does not export %s \"%s\"%s", path,
                           want[k].size ? "the constant" : "the function", want[k].name,
                           s ? " of the expected type and size" : "");
        if (!want[k].size) continue;
        uint64_t off;
        if (!file_offset(data, len, &eh, s->st_value, want[k].size, &off))
            return lj_fail(err, LORAJIT_E_FORMAT, "%s: the value of \"%s\" lies outside the file's loaded data", path,
                           want[k].name);
        memcpy(want[k].value, data + off, want[k].size);
    }
    return LORAJIT_OK;
}

lorajit_status lj_library_consts_read(const void *file, size_t len, const char *path, lj_library_consts *out,
                                      lj_err *err) {
    memset(out, 0, sizeof *out);
    lj_elf_sym syms[] = {{LJ_FORWARD_SYMBOL, 0, NULL}, {LJ_DECODE_SYMBOL, 0, NULL},
                         {LJ_ABI_SYMBOL, sizeof out->abi, &out->abi},
                         {LJ_CODE_HASH_SYMBOL, sizeof out->code_hash, &out->code_hash},
                         {LJ_SCRATCH_PER_TOKEN_SYMBOL, sizeof out->scratch_per_token, &out->scratch_per_token},
                         {LJ_SCRATCH_FIXED_SYMBOL, sizeof out->scratch_fixed, &out->scratch_fixed},
                         {LJ_LAYOUT_DIGEST_SYMBOL, sizeof out->layout_sha256, out->layout_sha256}};
    return lj_elf_symbols(file, len, path, syms, sizeof syms / sizeof syms[0], err);
}
