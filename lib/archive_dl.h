/* libarchive, opened on first use (dlopen) rather than linked: with ICU and
 * libxml2 behind it, loading it cost every run of vm-disk, vm-create and
 * vm-pack about 3 ms at start, and only packing, importing and writing ISO
 * images need it. Included by the modules that call libarchive (archive.c,
 * iso.c) after <archive.h> and <archive_entry.h>: each call below goes
 * through the table, so their code reads as plain libarchive. */
#ifndef VM_ARCHIVE_DL_H
#define VM_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

#define LIBARCHIVE_FUNCS(X) \
	X(archive_entry_copy_pathname) \
	X(archive_entry_copy_symlink) \
	X(archive_entry_filetype) \
	X(archive_entry_free) \
	X(archive_entry_hardlink) \
	X(archive_entry_hardlink_utf8) \
	X(archive_entry_mtime) \
	X(archive_entry_mtime_is_set) \
	X(archive_entry_mtime_nsec) \
	X(archive_entry_new) \
	X(archive_entry_pathname) \
	X(archive_entry_pathname_utf8) \
	X(archive_entry_perm) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_gid) \
	X(archive_entry_set_mtime) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_perm) \
	X(archive_entry_set_size) \
	X(archive_entry_set_symlink) \
	X(archive_entry_set_uid) \
	X(archive_entry_size) \
	X(archive_entry_size_is_set) \
	X(archive_entry_sparse_add_entry) \
	X(archive_entry_symlink) \
	X(archive_entry_symlink_utf8) \
	X(archive_errno) \
	X(archive_error_string) \
	X(archive_filter_bytes) \
	X(archive_read_close) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open_fd) \
	X(archive_read_open_filename) \
	X(archive_read_support_filter_bzip2) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_lz4) \
	X(archive_read_support_filter_lzma) \
	X(archive_read_support_filter_xz) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar) \
	X(archive_read_support_format_zip) \
	X(archive_set_error) \
	X(archive_write_add_filter_bzip2) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_add_filter_xz) \
	X(archive_write_add_filter_zstd) \
	X(archive_write_close) \
	X(archive_write_data) \
	X(archive_write_free) \
	X(archive_write_header) \
	X(archive_write_new) \
	X(archive_write_open2) \
	X(archive_write_open_fd) \
	X(archive_write_set_bytes_in_last_block) \
	X(archive_write_set_format_iso9660) \
	X(archive_write_set_format_option) \
	X(archive_write_set_format_pax_restricted) \
	X(archive_write_set_format_zip) \
	X(archive_write_zip_set_compression_deflate)

struct libarchive_fns {
#define X(f) __typeof__(f) *f;
	LIBARCHIVE_FUNCS(X)
#undef X
};
extern struct libarchive_fns libarchive_fns;

/* Open libarchive and resolve the table, once; 0, or -1 with *err
 * ("libarchive is not installed (Debian package libarchive13): ..."). Every
 * entry point that reaches a call below calls this first. */
int libarchive_load(char **err);

#define archive_entry_copy_pathname(...) (libarchive_fns.archive_entry_copy_pathname(__VA_ARGS__))
#define archive_entry_copy_symlink(...) (libarchive_fns.archive_entry_copy_symlink(__VA_ARGS__))
#define archive_entry_filetype(...) (libarchive_fns.archive_entry_filetype(__VA_ARGS__))
#define archive_entry_free(...) (libarchive_fns.archive_entry_free(__VA_ARGS__))
#define archive_entry_hardlink(...) (libarchive_fns.archive_entry_hardlink(__VA_ARGS__))
#define archive_entry_hardlink_utf8(...) (libarchive_fns.archive_entry_hardlink_utf8(__VA_ARGS__))
#define archive_entry_mtime(...) (libarchive_fns.archive_entry_mtime(__VA_ARGS__))
#define archive_entry_mtime_is_set(...) (libarchive_fns.archive_entry_mtime_is_set(__VA_ARGS__))
#define archive_entry_mtime_nsec(...) (libarchive_fns.archive_entry_mtime_nsec(__VA_ARGS__))
#define archive_entry_new(...) (libarchive_fns.archive_entry_new(__VA_ARGS__))
#define archive_entry_pathname(...) (libarchive_fns.archive_entry_pathname(__VA_ARGS__))
#define archive_entry_pathname_utf8(...) (libarchive_fns.archive_entry_pathname_utf8(__VA_ARGS__))
#define archive_entry_perm(...) (libarchive_fns.archive_entry_perm(__VA_ARGS__))
#define archive_entry_set_filetype(...) (libarchive_fns.archive_entry_set_filetype(__VA_ARGS__))
#define archive_entry_set_gid(...) (libarchive_fns.archive_entry_set_gid(__VA_ARGS__))
#define archive_entry_set_mtime(...) (libarchive_fns.archive_entry_set_mtime(__VA_ARGS__))
#define archive_entry_set_pathname(...) (libarchive_fns.archive_entry_set_pathname(__VA_ARGS__))
#define archive_entry_set_perm(...) (libarchive_fns.archive_entry_set_perm(__VA_ARGS__))
#define archive_entry_set_size(...) (libarchive_fns.archive_entry_set_size(__VA_ARGS__))
#define archive_entry_set_symlink(...) (libarchive_fns.archive_entry_set_symlink(__VA_ARGS__))
#define archive_entry_set_uid(...) (libarchive_fns.archive_entry_set_uid(__VA_ARGS__))
#define archive_entry_size(...) (libarchive_fns.archive_entry_size(__VA_ARGS__))
#define archive_entry_size_is_set(...) (libarchive_fns.archive_entry_size_is_set(__VA_ARGS__))
#define archive_entry_sparse_add_entry(...) (libarchive_fns.archive_entry_sparse_add_entry(__VA_ARGS__))
#define archive_entry_symlink(...) (libarchive_fns.archive_entry_symlink(__VA_ARGS__))
#define archive_entry_symlink_utf8(...) (libarchive_fns.archive_entry_symlink_utf8(__VA_ARGS__))
#define archive_errno(...) (libarchive_fns.archive_errno(__VA_ARGS__))
#define archive_error_string(...) (libarchive_fns.archive_error_string(__VA_ARGS__))
#define archive_filter_bytes(...) (libarchive_fns.archive_filter_bytes(__VA_ARGS__))
#define archive_read_close(...) (libarchive_fns.archive_read_close(__VA_ARGS__))
#define archive_read_data_block(...) (libarchive_fns.archive_read_data_block(__VA_ARGS__))
#define archive_read_free(...) (libarchive_fns.archive_read_free(__VA_ARGS__))
#define archive_read_new(...) (libarchive_fns.archive_read_new(__VA_ARGS__))
#define archive_read_next_header(...) (libarchive_fns.archive_read_next_header(__VA_ARGS__))
#define archive_read_open_fd(...) (libarchive_fns.archive_read_open_fd(__VA_ARGS__))
#define archive_read_open_filename(...) (libarchive_fns.archive_read_open_filename(__VA_ARGS__))
#define archive_read_support_filter_bzip2(...) (libarchive_fns.archive_read_support_filter_bzip2(__VA_ARGS__))
#define archive_read_support_filter_gzip(...) (libarchive_fns.archive_read_support_filter_gzip(__VA_ARGS__))
#define archive_read_support_filter_lz4(...) (libarchive_fns.archive_read_support_filter_lz4(__VA_ARGS__))
#define archive_read_support_filter_lzma(...) (libarchive_fns.archive_read_support_filter_lzma(__VA_ARGS__))
#define archive_read_support_filter_xz(...) (libarchive_fns.archive_read_support_filter_xz(__VA_ARGS__))
#define archive_read_support_filter_zstd(...) (libarchive_fns.archive_read_support_filter_zstd(__VA_ARGS__))
#define archive_read_support_format_tar(...) (libarchive_fns.archive_read_support_format_tar(__VA_ARGS__))
#define archive_read_support_format_zip(...) (libarchive_fns.archive_read_support_format_zip(__VA_ARGS__))
#define archive_set_error(...) (libarchive_fns.archive_set_error(__VA_ARGS__))
#define archive_write_add_filter_bzip2(...) (libarchive_fns.archive_write_add_filter_bzip2(__VA_ARGS__))
#define archive_write_add_filter_gzip(...) (libarchive_fns.archive_write_add_filter_gzip(__VA_ARGS__))
#define archive_write_add_filter_xz(...) (libarchive_fns.archive_write_add_filter_xz(__VA_ARGS__))
#define archive_write_add_filter_zstd(...) (libarchive_fns.archive_write_add_filter_zstd(__VA_ARGS__))
#define archive_write_close(...) (libarchive_fns.archive_write_close(__VA_ARGS__))
#define archive_write_data(...) (libarchive_fns.archive_write_data(__VA_ARGS__))
#define archive_write_free(...) (libarchive_fns.archive_write_free(__VA_ARGS__))
#define archive_write_header(...) (libarchive_fns.archive_write_header(__VA_ARGS__))
#define archive_write_new(...) (libarchive_fns.archive_write_new(__VA_ARGS__))
#define archive_write_open2(...) (libarchive_fns.archive_write_open2(__VA_ARGS__))
#define archive_write_open_fd(...) (libarchive_fns.archive_write_open_fd(__VA_ARGS__))
#define archive_write_set_bytes_in_last_block(...) (libarchive_fns.archive_write_set_bytes_in_last_block(__VA_ARGS__))
#define archive_write_set_format_iso9660(...) (libarchive_fns.archive_write_set_format_iso9660(__VA_ARGS__))
#define archive_write_set_format_option(...) (libarchive_fns.archive_write_set_format_option(__VA_ARGS__))
#define archive_write_set_format_pax_restricted(...) (libarchive_fns.archive_write_set_format_pax_restricted(__VA_ARGS__))
#define archive_write_set_format_zip(...) (libarchive_fns.archive_write_set_format_zip(__VA_ARGS__))
#define archive_write_zip_set_compression_deflate(...) (libarchive_fns.archive_write_zip_set_compression_deflate(__VA_ARGS__))

#endif
