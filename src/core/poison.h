/*
 * poison.h: forced into every translation unit by the build (-include).
 *
 * Pulls in the libc headers that declare the unsafe string functions, then
 * poisons those names so any later use is a compile error. Use the strv/buf
 * helpers, snprintf, strtoul-style parsers or memcpy with explicit lengths.
 */
#ifndef CELER_POISON_H
#define CELER_POISON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok atoi atol

#endif
