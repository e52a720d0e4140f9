/* SPDX-License-Identifier: MIT */
/*
 * Images, bmaps and signatures read from another host over ssh, as the reference tool
 * takes them: ssh://[USER[:PASSWORD]@]HOST:PATH (PATH relative to the home folder unless
 * it starts with /) and ssh://[USER[:PASSWORD]@]HOST[:PORT]/ABSOLUTE/PATH. The system's
 * ssh runs (BMAPKIT_SSH_COMMAND replaces it, see remote.c) with the user's configuration
 * and agent; a password from the URL reaches it through SSH_ASKPASS, answered by this
 * program itself, never on a command line or in a file.
 */
#ifndef BMAPKIT_SSH_SOURCE_H
#define BMAPKIT_SSH_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "bmapkit/bmapkit.h"

/* Whether PATH is an ssh:// URL. */
bool ssh_source_is_url(const char *path);

/* Check the ssh:// URL TEXT: CLI_CONTINUE, or EXIT_USAGE after the usage error. */
int ssh_source_check_url(const char *text);

/*
 * Ask the host in one round trip whether the image URL is a readable file, and, when
 * FIND_BMAP, which bmap is next to it (the names bk_bmap_find tries) and whether that
 * bmap has a .asc or .sig signature next to it. Returns EXIT_OK, or the exit status
 * after printing the error. The bmap's URL goes into FOUND ("" when none).
 */
int ssh_check_image(const char *url, bool find_bmap, char *found, size_t cap);

/* After ssh_check_image: the bmap found into OUT, or -1 with ERR filled when none. */
int ssh_found_bmap(const char *image_url, const char *found, struct bk_error *err);

/*
 * The signature next to the bmap BMAP_URL: the first of SUFFIXES (COUNT of them) that
 * exists there; -1 when none. Asks the host unless ssh_check_image already did.
 */
int ssh_find_signature(const char *bmap_url, const char *const *suffixes, size_t count);

/* The file at URL as it is (cat over ssh). NULL with ERR filled. */
struct bk_source *ssh_open_file(const char *url, struct bk_error *err);

/* The image at URL with its decoders stacked. NULL with ERR filled. */
struct bk_source *ssh_open_image(const char *url, enum bk_format *format, struct bk_error *err);

/*
 * All of the small file at URL (a bmap or its signature) into a buffer the caller
 * frees, or NULL with ERR filled. The last file read is kept, so reading it twice
 * costs one connection.
 */
char *ssh_read_whole(const char *url, size_t *len, struct bk_error *err);

/*
 * The hidden mode in which ssh runs this program as its SSH_ASKPASS: prints the
 * password of the URL to ssh. Returns -1 when ARGV is not such a call, else the exit
 * status.
 */
int ssh_askpass(int argc, char **argv);

#endif
